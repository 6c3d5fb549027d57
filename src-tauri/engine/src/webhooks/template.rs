//! Title and message templates: `{name}` (TradingView) or `{{name}}` (custom endpoints)
//! replaced by plain values. No expressions, no loops, no markup: the output is text that
//! overlay pages put into `textContent`.

/// Whether `name` can be a placeholder (1-64 of A-Z a-z 0-9 _).
fn placeholder_ok(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Replaces each `{open}name{close}` with `lookup(name)`; a placeholder `lookup` does not know
/// (`None`), and anything that is not a placeholder, stays as written.
pub(super) fn render(
    template: &str,
    open: &str,
    close: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find(open) {
        out.push_str(&rest[..start]);
        let after = &rest[start + open.len()..];
        let value = after
            .find(close)
            .filter(|end| placeholder_ok(&after[..*end]))
            .and_then(|end| lookup(&after[..end]).map(|v| (end, v)));
        match value {
            Some((end, value)) => {
                out.push_str(&value);
                rest = &after[end + close.len()..];
            }
            None => {
                out.push_str(open);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(name: &str) -> Option<String> {
        match name {
            "symbol" => Some("BTCUSD".into()),
            "empty" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn single_brace_placeholders() {
        assert_eq!(render("{symbol} up", "{", "}", fields), "BTCUSD up");
        assert_eq!(render("{empty}!", "{", "}", fields), "!");
        assert_eq!(
            render("{unknown} {sym bol} {", "{", "}", fields),
            "{unknown} {sym bol} {",
            "what is not a known placeholder stays as written"
        );
    }

    #[test]
    fn double_brace_placeholders() {
        assert_eq!(
            render("{{symbol}}/{symbol}/{{x", "{{", "}}", fields),
            "BTCUSD/{symbol}/{{x"
        );
        assert_eq!(
            render("{{{symbol}}}", "{{", "}}", fields),
            "{{{symbol}}}",
            "`{{symbol` is not a placeholder name, so nothing is replaced"
        );
    }
}
