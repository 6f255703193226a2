//! H-01: dates are judged on the site's local calendar (SAFETY.md). At 01:30 in
//! Shanghai (17:30 UTC the day before) a unit that expired yesterday, local time, is
//! never chosen or given, and a baby born after local midnight is not refused as
//! born in the future.

use chrono::{DateTime, NaiveDate, Utc};
use controller::config::Config;
use controller::dispense::status::Stage;
use controller::journal::clock::Clock;
use controller::rules::order::PatientOrder;
use hal::BoothId;
use std::time::Duration;

mod common;

/// Two HepB lots: one expiring on the 24th (yesterday, local), nearer the hatch and
/// first by expiry; one good to the end of the year.
const STOCK: &str = r#"
[[batch]]
gtin = "06901234000016"
lot = "YESTERDAY"
expiry = "2026-11-24"
serial_prefix = "Y"
count = 2
first_slot = "R0-0-0"

[[batch]]
gtin = "06901234000016"
lot = "GOOD"
expiry = "2026-12-31"
serial_prefix = "G"
count = 2
first_slot = "R1-0-0"
"#;

#[tokio::test(start_paused = true)]
async fn between_local_midnight_and_eight_the_local_date_decides() {
    let dir = tempfile::tempdir().expect("tempdir");
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    std::fs::copy(repo.join("config/catalog.toml"), dir.path().join("catalog.toml")).expect("catalog");
    std::fs::write(dir.path().join("stock.toml"), STOCK).expect("stock");
    let config = format!(
        "[site]\ntime_zone = \"Asia/Shanghai\"\n[server]\nlisten = \"127.0.0.1:0\"\n[journal]\npath = \"journal.db\"\n[catalog]\npath = \"catalog.toml\"\n[stock]\nmanifest = \"stock.toml\"\n\
         [hardware]\nkind = \"simulated\"\n[hardware.simulator]\nspeed = 1.0\nbooths = 2\n{}",
        common::auth_section()
    );
    std::fs::write(dir.path().join("ws.toml"), config).expect("config");
    // 01:30 on the 25th in Shanghai; the UTC date is still the 24th.
    let anchor: DateTime<Utc> = DateTime::parse_from_rfc3339("2026-11-24T17:30:00Z").expect("time").with_timezone(&Utc);
    let assembled = common::assemble_with_clock(Config::load(&dir.path().join("ws.toml")).expect("config"), Clock::following_tokio(anchor)).await.expect("assembles");
    let dispatcher = assembled.dispatcher.clone();

    let born_tonight = NaiveDate::from_ymd_opt(2026, 11, 25).expect("date");
    let order = PatientOrder::new("P1", "Newborn", "HepB", BoothId(1), 1, born_tonight);
    let started = dispatcher.start("local-midnight", order).expect("a baby born after local midnight is not born in the future");

    let mut status = dispatcher.get(&started.dispense_id).expect("status");
    for _ in 0..600 {
        if status.stage == Stage::AwaitingValidation || status.stage.is_final() {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        status = dispatcher.get(&started.dispense_id).expect("status");
    }
    assert_eq!(status.stage, Stage::AwaitingValidation, "{status:?}");
    let unit = status.unit.expect("a unit");
    assert_eq!(unit.lot, "GOOD", "the lot that expired yesterday (local) is never chosen: {unit:?}");
    let delivered: Vec<String> = assembled.simulator.as_ref().expect("simulated").deliveries().iter().map(|d| d.label.clone()).collect();
    assert!(delivered.iter().all(|label| !label.contains("YESTERDAY")), "{delivered:?}");
}
