//! Build script of the desktop shell: `tauri-build` reads `tauri.conf.json` (next to the root
//! manifest), embeds the boot page and icons, resolves capabilities and, on Windows, writes the
//! resource file.

use std::path::Path;

/// Capabilities live with the rest of the shell under `src-tauri/`, not next to the manifest.
const CAPABILITIES: &str = "src-tauri/capabilities";

fn main() {
    // tauri-build leaves watching a custom capabilities directory to us. Watching one that does
    // not exist (git keeps no empty directories) would rerun this script on every build.
    if Path::new(CAPABILITIES).exists() {
        println!("cargo:rerun-if-changed={CAPABILITIES}");
    }
    let attributes =
        tauri_build::Attributes::new().capabilities_path_pattern("src-tauri/capabilities/**/*");
    if let Err(error) = tauri_build::try_build(attributes) {
        println!("cargo:warning=tauri-build: {error:#}");
        std::process::exit(1);
    }
}
