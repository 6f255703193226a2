//! The controller on tokio's virtual clock: with the journal's clock following a
//! paused runtime, the cold-chain rules judge virtual hours exactly as they would
//! real ones. A compressor failure warms the cabinet past 8 °C within minutes and,
//! ten virtual hours later (the real WHO rule, not a shortened one), becomes a heat
//! excursion that holds every unit — in well under a second of wall time.

use chrono::{DateTime, Utc};
use simulator::injection::Fault;
use std::time::Duration;

mod common;

#[tokio::test(start_paused = true)]
async fn a_compressor_failure_is_judged_on_virtual_hours() {
    let dir = tempfile::tempdir().expect("tempdir");
    let anchor: DateTime<Utc> = DateTime::parse_from_rfc3339("2026-03-02T08:00:00Z").expect("time").with_timezone(&Utc);
    let assembled = common::on_virtual_time(dir.path(), common::MANIFEST, "", "[coldchain]\nsample_s = 60.0", 4, "2026-03-02T08:00:00Z").await;
    let journal = assembled.dispatcher.journal();
    let failed_at = journal.now();
    assembled.simulator.as_ref().expect("simulated").inject(&Fault::CompressorFailure(true)).expect("compressor");

    tokio::time::sleep(Duration::from_secs(9 * 3600)).await;
    let alarms: Vec<String> = journal.active_alarms().expect("alarms").into_iter().map(|a| a.0).collect();
    assert!(alarms.contains(&"high".to_owned()), "above 8 °C within minutes: {alarms:?}");
    assert!(!alarms.contains(&"heat".to_owned()), "not yet an excursion after 9 virtual hours: {alarms:?}");
    assert!(journal.units_in_store(&[common::HEPB.to_owned()]).expect("units").iter().all(|u| u.hold.is_none()));

    tokio::time::sleep(Duration::from_secs(2 * 3600)).await;
    let alarms = journal.active_alarms().expect("alarms");
    let heat = alarms.iter().find(|a| a.0 == "heat").unwrap_or_else(|| panic!("heat excursion after 11 virtual hours: {alarms:?}"));
    let since = DateTime::parse_from_rfc3339(&heat.1).expect("since").with_timezone(&Utc);
    let warmed = (since - failed_at).num_minutes();
    assert!((1..=30).contains(&warmed), "the cabinet passed 8 °C {warmed} virtual minutes after the failure");
    assert!(journal.units_in_store(&[common::HEPB.to_owned()]).expect("units").iter().all(|u| u.hold.is_some()), "exposed units held");
    let readings = journal.readings_between(anchor, journal.now()).expect("readings");
    let span = readings.last().expect("readings").0 - readings.first().expect("readings").0;
    assert!(span >= chrono::Duration::hours(10), "the journal records {} virtual hours of readings", span.num_hours());
}
