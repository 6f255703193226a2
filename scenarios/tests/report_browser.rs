//! A scenario report as an engineer sees it: rendered by a real headless browser
//! (Debian's chromium, installed by scripts/setup.sh), every chart must be laid out
//! with a size and marks in it — the report's own script marks each figure
//! `data-drawn=yes|no` from the browser's layout (SVG bounding boxes), and the
//! browser's DOM after load is read back.

use std::process::Command;

const CHARTS: [&str; 8] = ["load", "throughput", "utilisation", "gantt", "wait", "to-booth", "temperatures", "heat"];

#[test]
fn every_chart_of_a_report_is_drawn_in_a_real_browser() {
    let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].into_iter().find(|p| std::path::Path::new(p).exists()).expect("chromium is not installed: run scripts/setup.sh");
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("library/belt-jam.toml");
    let report = scenarios::run_file(&file, None, &|_, _, _| {}).expect("the scenario runs");
    let dir = tempfile::tempdir().expect("tempdir");
    let page = dir.path().join("report.html");
    std::fs::write(&page, report.html()).expect("report written");
    let out = Command::new(chromium)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        .arg(format!("--user-data-dir={}", dir.path().join("profile").display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium runs");
    let dom = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && dom.contains("</html>"), "chromium rendered the page: {}", String::from_utf8_lossy(&out.stderr));
    for chart in CHARTS {
        assert!(dom.contains(&format!("data-chart=\"{chart}\" data-drawn=\"yes\"")), "chart {chart:?} was not drawn in the browser");
    }
    assert_eq!(dom.matches("data-drawn=\"yes\"").count(), CHARTS.len(), "every chart of the report is named here");
    assert!(!dom.contains("data-drawn=\"no\""));
}
