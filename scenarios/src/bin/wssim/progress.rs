//! Progress bars for long runs (indicatif), drawn only on a terminal: in CI logs,
//! pipes and `--json` mode nothing but the results is written.

use std::io::IsTerminal;

/// A bar of `len` steps in `template`'s style, hidden when stderr is not a terminal.
pub fn bar(len: u64, template: &str) -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len);
    bar.set_style(indicatif::ProgressStyle::with_template(template).unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()));
    bar
}
