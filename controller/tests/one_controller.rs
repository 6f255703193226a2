//! One controller per journal (SAFETY H-21): a second controller started on a
//! journal file another one is using is refused before it opens anything else,
//! and a controller that died leaves the journal to the next one.

mod common;

use controller::journal::clock::Clock;

#[tokio::test(start_paused = true)]
async fn a_second_controller_on_one_journal_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let first = common::on_virtual_time(dir.path(), common::MANIFEST, "", "", 2, "2026-06-01T02:00:00Z").await;
    let anchor = chrono::DateTime::parse_from_rfc3339("2026-06-01T02:00:00Z").expect("time").with_timezone(&chrono::Utc);
    let second = common::assemble_with_clock(first.config.clone(), Clock::following_tokio(anchor)).await;
    let why = format!("{:#}", second.expect_err("a second controller on the same journal must be refused"));
    assert!(why.contains("journal.db") && why.contains("another controller"), "the refusal names the journal and why: {why}");
    // The first one dies (as a killed process would, its claim goes with it):
    // the next controller takes the journal over.
    first.dispatcher.stop_as_if_crashed();
    let next = common::assemble_with_clock(first.config.clone(), Clock::following_tokio(anchor)).await;
    assert!(next.is_ok(), "after the first died the journal is free: {:?}", next.err());
}
