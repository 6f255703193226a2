//! H-01: dates are judged on the site's local calendar (SAFETY.md). At 01:30 in
//! Shanghai (17:30 UTC the day before) a unit that expired yesterday, local time, is
//! never chosen or given, and a baby born after local midnight is not refused as
//! born in the future.

use chrono::NaiveDate;
use controller::dispense::status::Stage;
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
    // 01:30 on the 25th in Shanghai; the UTC date is still the 24th.
    let assembled = common::on_virtual_time(dir.path(), STOCK, "[site]\ntime_zone = \"Asia/Shanghai\"", "", 2, "2026-11-24T17:30:00Z").await;
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
