//! Checking a speech request before anything is rendered, written or sent: text length and
//! characters, language tag and voice name (both end up as a program's argument), and the
//! ranges of rate, pitch and volume.

use super::{MAX_TEXT_CHARS, SpeakRequest, TtsError};

/// A request that passed validation, with defaults filled in.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Utterance {
    pub(super) text: String,
    pub(super) lang: Option<String>,
    pub(super) voice: Option<String>,
    pub(super) rate: f64,
    pub(super) pitch: f64,
    pub(super) volume: f64,
}

fn ranged(what: &str, value: Option<f64>, low: f64, high: f64) -> Result<f64, TtsError> {
    let value = value.unwrap_or(1.0);
    if (low..=high).contains(&value) {
        // Two decimals: finer steps are inaudible and would only split the cache.
        Ok((value * 100.0).round() / 100.0)
    } else {
        Err(TtsError::Invalid(format!(
            "{what} must be between {low} and {high}"
        )))
    }
}

/// `en`, `en-US`, `zh-Hant-TW`: a primary language of 2-3 letters and up to three subtags.
fn lang_ok(lang: &str) -> bool {
    let mut parts = lang.split('-');
    let primary = parts.next().unwrap_or_default();
    let rest: Vec<&str> = parts.collect();
    (2..=3).contains(&primary.len())
        && primary.bytes().all(|b| b.is_ascii_alphabetic())
        && rest.len() <= 3
        && rest
            .iter()
            .all(|p| (1..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// Voice names are handed to a program as one argument; keep them to plain characters.
fn voice_ok(voice: &str) -> bool {
    (1..=64).contains(&voice.len())
        && !voice.starts_with('-')
        && voice
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b" _-+./()".contains(&b))
}

/// Checks a request and fills in its defaults; nothing is rendered, written or sent for one
/// that fails.
pub(super) fn validate(req: &SpeakRequest) -> Result<Utterance, TtsError> {
    let chars = req.text.chars().count();
    if req.text.trim().is_empty() || chars > MAX_TEXT_CHARS {
        return Err(TtsError::Invalid(format!(
            "text must be 1-{MAX_TEXT_CHARS} characters (it has {chars})"
        )));
    }
    if req
        .text
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(TtsError::Invalid(
            "text must not contain control characters".into(),
        ));
    }
    if let Some(lang) = &req.lang
        && !lang_ok(lang)
    {
        return Err(TtsError::Invalid(
            "lang must be a language tag such as en or en-US".into(),
        ));
    }
    if let Some(voice) = &req.voice
        && !voice_ok(voice)
    {
        return Err(TtsError::Invalid(
            "voice must be 1-64 of letters, digits, space and _ - + . / ( ), not starting with -"
                .into(),
        ));
    }
    Ok(Utterance {
        text: req.text.clone(),
        lang: req.lang.clone(),
        voice: req.voice.clone(),
        rate: ranged("rate", req.rate, 0.5, 2.0)?,
        pitch: ranged("pitch", req.pitch, 0.0, 2.0)?,
        volume: ranged("volume", req.volume, 0.0, 1.0)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(text: &str) -> SpeakRequest {
        SpeakRequest {
            text: text.into(),
            ..SpeakRequest::default()
        }
    }

    #[test]
    fn defaults_fill_in_and_values_round_to_two_decimals() {
        let s = validate(&req("hello")).expect("valid");
        assert_eq!((s.rate, s.pitch, s.volume), (1.0, 1.0, 1.0));
        let s = validate(&SpeakRequest {
            rate: Some(1.23456),
            lang: Some("zh-Hant-TW".into()),
            voice: Some("en-us+f3".into()),
            ..req("hello")
        })
        .expect("valid");
        assert_eq!(s.rate, 1.23);
    }

    #[test]
    fn out_of_range_and_malformed_fields_are_refused() {
        let long = "a".repeat(MAX_TEXT_CHARS + 1);
        let at_limit = "é".repeat(MAX_TEXT_CHARS);
        assert!(validate(&req(&at_limit)).is_ok(), "characters, not bytes");
        for bad in [
            req(""),
            req("   \n"),
            req(&long),
            req("bell\u{7}"),
            SpeakRequest {
                rate: Some(0.49),
                ..req("x")
            },
            SpeakRequest {
                rate: Some(2.01),
                ..req("x")
            },
            SpeakRequest {
                pitch: Some(-0.1),
                ..req("x")
            },
            SpeakRequest {
                volume: Some(1.5),
                ..req("x")
            },
            SpeakRequest {
                lang: Some("english".into()),
                ..req("x")
            },
            SpeakRequest {
                lang: Some("en_US".into()),
                ..req("x")
            },
            SpeakRequest {
                lang: Some("en-".into()),
                ..req("x")
            },
            SpeakRequest {
                voice: Some("-w /etc/x".into()),
                ..req("x")
            },
            SpeakRequest {
                voice: Some("a;b".into()),
                ..req("x")
            },
            SpeakRequest {
                voice: Some(String::new()),
                ..req("x")
            },
        ] {
            assert!(
                matches!(validate(&bad), Err(TtsError::Invalid(_))),
                "{bad:?} must be refused"
            );
        }
    }
}
