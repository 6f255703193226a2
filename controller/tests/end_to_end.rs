//! End to end: the daemon's gRPC server on loopback with simulated hardware, a real
//! tonic client as the clinic, and assertions on the physical truth of the simulator
//! and on the journal.

use common::Assembled;
use controller::dispense::workstation::WorkstationState;
use dispense_proto::v1 as pb;
use hal::BoothId;
use hal::codes::UnitCode;
use std::path::Path;
use std::time::Duration;
use tonic::Code;
use tonic_types::StatusExt;

mod common;
use common::{HEPB, IPV, MMR, order, serve_workstation, start, wait_for};
use controller::journal::StepKind;

struct Station {
    assembled: Assembled,
    client: common::Client,
    _dir: tempfile::TempDir,
}

async fn start_workstation() -> Station {
    let dir = tempfile::tempdir().expect("tempdir");
    let (assembled, client) = serve_workstation(dir.path(), "[hardware]\nkind = \"simulated\"\n[hardware.simulator]\nspeed = 40.0\nbooths = 4\n").await;
    Station { assembled, client, _dir: dir }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn right_unit_reaches_right_booth_and_the_journal_holds_every_step() {
    let Station { assembled, mut client, _dir } = start_workstation().await;
    let sim = assembled.simulator.clone().expect("simulated");
    let id = start(&mut client, "req-1", order("HepB", 2)).await.dispense_id;

    let at_booth = wait_for(&mut client, &id, pb::DispenseStage::AwaitingValidation).await;
    assert_eq!(at_booth.stage, pb::DispenseStage::AwaitingValidation as i32, "{at_booth:?}");
    let unit = at_booth.unit.expect("unit known");
    assert_eq!((unit.lot.as_str(), unit.slot.as_str()), ("EARLY", "R2-4-8"), "earliest expiry first, though farther away");

    // Physical truth: exactly that unit lies in booth 2's tray, and the display shows it.
    let deliveries = sim.deliveries();
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0].booth, BoothId(2));
    assert_eq!(UnitCode::parse(&deliveries[0].label).expect("label parses").canonical(), unit.code);
    // The display is set as the runner starts waiting for the validation, just
    // after it publishes the stage: poll for it.
    let shown_by = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let display = loop {
        match sim.booth_display(BoothId(2)) {
            Some(display) => break display,
            None if std::time::Instant::now() < shown_by => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
            None => panic!("booth display set"),
        }
    };
    assert_eq!((display.lot.as_str(), display.expiry.as_str()), ("EARLY", "2027-03-31"));

    // Administration before validation is refused: the guardian validates first.
    let early = client.confirm_administration(pb::ConfirmAdministrationRequest { dispense_id: id.clone(), nurse_id: "N2".into(), ..Default::default() }).await;
    let early = early.expect_err("out of order");
    assert_eq!(early.code(), Code::FailedPrecondition);
    let info = early.get_details_error_info().expect("ErrorInfo");
    assert_eq!((info.reason.as_str(), info.domain.as_str()), ("WRONG_STAGE", controller::api::errors::ERROR_DOMAIN));
    client.confirm_validation(pb::ConfirmValidationRequest { dispense_id: id.clone(), booth_scan: String::new() }).await.expect("validation");
    wait_for(&mut client, &id, pb::DispenseStage::AwaitingAdministration).await;
    client.confirm_administration(pb::ConfirmAdministrationRequest { dispense_id: id.clone(), nurse_id: "N2".into(), ..Default::default() }).await.expect("administration");
    let done = wait_for(&mut client, &id, pb::DispenseStage::Administered).await;
    assert_eq!(done.stage, pb::DispenseStage::Administered as i32);
    assert!(done.booth_arrival_time.is_some() && done.finish_time.is_some());

    // The journal: every command as intent then outcome, in the order the flow ran.
    let journal = assembled.dispatcher.journal();
    let entries = journal.entries(&id).expect("journal");
    let commands: Vec<(&str, &str)> = entries.iter().filter(|e| e.kind == StepKind::Intent || e.kind == StepKind::Outcome).map(|e| (e.kind.as_str(), e.step.as_str())).collect();
    let intents: Vec<&str> = commands.iter().filter(|(k, _)| *k == "intent").map(|(_, s)| *s).collect();
    assert_eq!(intents, ["Allocate", "Pick", "Convey", "Scan", "Verify", "Convey", "Convey", "AwaitValidation", "AwaitAdministration", "Finish"]);
    for pair in commands.chunks(2) {
        assert_eq!((pair[0].0, pair[1].0), ("intent", "outcome"), "each intent is followed by its outcome: {commands:?}");
    }
    let outcome_of_scan = entries.iter().find(|e| e.kind == StepKind::Outcome && e.step == "Read").expect("scan outcome");
    assert!(outcome_of_scan.detail.contains("]d2") && outcome_of_scan.detail.contains(&unit.code), "{}", outcome_of_scan.detail);
    let stages: Vec<&str> = entries.iter().filter(|e| e.kind == StepKind::Stage).map(|e| e.step.as_str()).collect();
    assert_eq!(stages.first(), Some(&"accepted"));
    assert_eq!(stages.last(), Some(&"administered"));
    let record = journal.stock_record(&unit.code).expect("journal").expect("record");
    assert_eq!(record.state, controller::rules::inventory::UnitState::Administered);
    assert_eq!(sim.reject_bin(), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mislabelled_unit_goes_to_the_reject_bin_never_to_a_booth() {
    let Station { assembled, mut client, _dir } = start_workstation().await;
    let sim = assembled.simulator.clone().expect("simulated");
    let id = start(&mut client, "req-mmr", order("MMR", 3)).await.dispense_id;
    let done = wait_for(&mut client, &id, pb::DispenseStage::Rejected).await;
    assert_eq!(done.stage, pb::DispenseStage::Rejected as i32, "{done:?}");
    let ids: Vec<&str> = done.violations.iter().map(|v| v.id.as_str()).collect();
    assert_eq!(ids, ["ProductMismatch", "UnknownUnit"]);
    assert!(done.violations[0].message.contains("IPV"), "{:?}", done.violations[0]);

    assert!(sim.deliveries().is_empty(), "nothing reached a booth");
    let bin = sim.reject_bin();
    assert_eq!(bin.len(), 1);
    assert!(bin[0].contains(IPV) && !bin[0].contains(MMR), "the physical unit is in the bin: {bin:?}");
    let recorded = &done.unit.expect("unit").code;
    let record = assembled.dispatcher.journal().stock_record(recorded).expect("journal").expect("record");
    assert_eq!(record.state, controller::rules::inventory::UnitState::Rejected, "the picked unit is quarantined");

    // Confirming a rejected dispense is refused.
    let late = client.confirm_validation(pb::ConfirmValidationRequest { dispense_id: id, booth_scan: String::new() }).await;
    assert_eq!(late.expect_err("rejected").code(), Code::FailedPrecondition);
    // And there is no other MMR: the next order fails cleanly with a reason.
    let none = start(&mut client, "req-mmr-2", order("MMR", 3)).await.dispense_id;
    let failed = wait_for(&mut client, &none, pb::DispenseStage::Failed).await;
    assert!(failed.detail.contains("no MMR unit in store"), "{}", failed.detail);
    // Picker and belt homing, pick, hatch release, belt to the scan station, belt to
    // the bin; the order with no stock moved nothing.
    assert_eq!(sim.motions_started(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_request_id_never_dispenses_twice() {
    let Station { assembled, mut client, _dir } = start_workstation().await;
    let first = start(&mut client, "retry-me", order("HepB", 1)).await;
    let again = start(&mut client, "retry-me", order("HepB", 1)).await;
    assert_eq!((again.dispense_id.as_str(), again.duplicate, first.duplicate), (first.dispense_id.as_str(), true, false));
    let conflict = client.start_dispense(pb::StartDispenseRequest { request_id: "retry-me".into(), order: Some(order("IPV", 1)) }).await;
    let status = conflict.expect_err("different order");
    assert_eq!(status.code(), Code::AlreadyExists);
    assert_eq!(status.get_details_error_info().expect("ErrorInfo").reason, "REQUEST_ID_REUSED");
    assert!(status.message().contains(&first.dispense_id));
    wait_for(&mut client, &first.dispense_id, pb::DispenseStage::AwaitingValidation).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(assembled.simulator.expect("sim").deliveries().len(), 1, "one unit for one request id");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_are_refused_naming_the_field() {
    let Station { mut client, _dir, .. } = start_workstation().await;
    let cases = [
        ("r1", Some(order("HepB", 9)), "order.booth"),
        ("r2", Some(order("Rabies", 1)), "order.product_id"),
        ("", Some(order("HepB", 1)), "request_id"),
        ("r3", None, "order"),
        ("r4", Some(pb::PatientOrder { patient_id: String::new(), ..order("HepB", 1) }), "order.patient_id"),
        ("r5", Some(pb::PatientOrder { dose_number: 0, ..order("HepB", 1) }), "order.dose_number"),
        ("r6", Some(pb::PatientOrder { birth_date: String::new(), ..order("HepB", 1) }), "order.birth_date"),
        ("r7", Some(pb::PatientOrder { birth_date: "2026-13-01".into(), ..order("HepB", 1) }), "order.birth_date"),
        ("r8", Some(pb::PatientOrder { birth_date: "2099-01-01".into(), ..order("HepB", 1) }), "order.birth_date"),
        ("r9", Some(pb::PatientOrder { dose_ml: -1.0, ..order("HepB", 1) }), "order.dose_ml"),
        (
            "r10",
            Some(pb::PatientOrder { history: vec![pb::PriorDose { product_id: "HepB".into(), dose_number: 1, date: "yesterday".into() }], ..order("HepB", 1) }),
            "order.history[0].date",
        ),
        (
            "r11",
            Some(pb::PatientOrder { history: vec![pb::PriorDose { product_id: "Rabies".into(), dose_number: 1, date: "2026-01-01".into() }], ..order("HepB", 1) }),
            "order.history.product_id",
        ),
    ];
    for (request_id, order, field) in cases {
        let err = client.start_dispense(pb::StartDispenseRequest { request_id: request_id.into(), order }).await.expect_err(field);
        assert_eq!(err.code(), Code::InvalidArgument, "{field}: {err:?}");
        assert!(err.message().starts_with(field), "{field}: {}", err.message());
        // The same, machine-readable: a google.rpc.BadRequest naming the field.
        let bad = err.get_details_bad_request().expect("BadRequest details");
        assert_eq!(bad.field_violations[0].field, field);
    }
    let unknown = client.get_dispense(pb::GetDispenseRequest { dispense_id: "D999999".into() }).await.expect_err("unknown");
    assert_eq!(unknown.code(), Code::NotFound);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ineligible_patient_is_refused_before_anything_is_picked() {
    let Station { assembled, mut client, _dir } = start_workstation().await;
    let sim = assembled.simulator.clone().expect("simulated");
    let before = (sim.motions_started(), assembled.dispatcher.journal().stock_counts().expect("counts"));
    let born = chrono::Utc::now().date_naive() - chrono::Duration::days(100);
    let young = pb::PatientOrder { birth_date: born.to_string(), health_check_attested: false, ..order("MMR", 2) };
    let id = start(&mut client, "too-young", young).await.dispense_id;
    let done = wait_for(&mut client, &id, pb::DispenseStage::Rejected).await;
    let ids: Vec<&str> = done.violations.iter().map(|v| v.id.as_str()).collect();
    assert_eq!(ids, ["HealthCheckMissing", "AgeNotEligible"], "{done:?}");
    assert!(done.unit.is_none(), "no unit was allocated");
    assert_eq!((sim.motions_started(), assembled.dispatcher.journal().stock_counts().expect("counts")), before, "nothing moved, no stock touched");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_guardian_must_validate_in_time_and_a_booth_scan_must_be_the_delivered_unit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let hardware = "[checks]\nvalidation_timeout_s = 1\n[hardware]\nkind = \"simulated\"\n[hardware.simulator]\nspeed = 40.0\nbooths = 4\n";
    let (assembled, mut client) = serve_workstation(dir.path(), hardware).await;
    let sim = assembled.simulator.clone().expect("simulated");
    let journal = assembled.dispatcher.journal();

    // Nobody validates: after the timeout the unit is rejected and quarantined.
    let id = start(&mut client, "late", order("HepB", 1)).await.dispense_id;
    let done = wait_for(&mut client, &id, pb::DispenseStage::Rejected).await;
    assert_eq!(done.violations.iter().map(|v| v.id.as_str()).collect::<Vec<_>>(), ["ValidationFailed"], "{done:?}");
    let code = done.unit.expect("unit").code;
    assert_eq!(journal.stock_record(&code).expect("journal").expect("record").state, controller::rules::inventory::UnitState::Rejected);
    let display = sim.booth_display(BoothId(1)).expect("a warning");
    assert!(display.product_name.starts_with("DO NOT GIVE") && display.lot.is_empty(), "the display no longer offers it: {display:?}");

    // The booth scan reads another unit: rejected.
    let id = start(&mut client, "wrong-scan", order("HepB", 2)).await.dispense_id;
    wait_for(&mut client, &id, pb::DispenseStage::AwaitingValidation).await;
    let other = format!("(01){HEPB}(17)281231(10)LATE(21)NOTTHIS");
    client.confirm_validation(pb::ConfirmValidationRequest { dispense_id: id.clone(), booth_scan: other }).await.expect("validation call");
    let done = wait_for(&mut client, &id, pb::DispenseStage::Rejected).await;
    assert!(done.violations.iter().any(|v| v.id == "ValidationFailed" && v.message.contains("NOTTHIS")), "{done:?}");

    // A garbled booth scan is refused as a bad argument; the right one validates.
    let id = start(&mut client, "right-scan", order("HepB", 3)).await.dispense_id;
    let at_booth = wait_for(&mut client, &id, pb::DispenseStage::AwaitingValidation).await;
    let garbled = client.confirm_validation(pb::ConfirmValidationRequest { dispense_id: id.clone(), booth_scan: "(01)123".into() }).await;
    assert_eq!(garbled.expect_err("garbled").code(), Code::InvalidArgument);
    let right = at_booth.unit.expect("unit").code;
    client.confirm_validation(pb::ConfirmValidationRequest { dispense_id: id.clone(), booth_scan: right }).await.expect("validation");
    let validated = wait_for(&mut client, &id, pb::DispenseStage::AwaitingAdministration).await;
    assert_eq!(validated.stage, pb::DispenseStage::AwaitingAdministration as i32);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_moves_while_the_restock_door_is_open() {
    let Station { assembled, mut client, _dir } = start_workstation().await;
    let sim = assembled.simulator.clone().expect("simulated");
    let before = sim.motions_started();
    sim.set_restock_door_open(true);
    let id = start(&mut client, "door", order("HepB", 1)).await.dispense_id;
    // The clinic sees why it waits (polled: a loaded machine may take a while to get there)…
    let paused_by = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let waiting = client.get_dispense(pb::GetDispenseRequest { dispense_id: id.clone() }).await.expect("get").into_inner().dispense.expect("d");
        if waiting.detail.contains("restock door") {
            break;
        }
        assert!(tokio::time::Instant::now() < paused_by, "the clinic sees why: {}", waiting.detail);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // …and in half a second of waiting, nothing moved.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(sim.motions_started(), before, "no motion with the door open");
    let queue = client.list_queue(pb::ListQueueRequest::default()).await.expect("queue").into_inner().dispenses;
    assert_eq!(queue.iter().map(|d| d.dispense_id.as_str()).collect::<Vec<_>>(), [id.as_str()], "the waiting dispense is the queue");
    assert!(!queue[0].finished);
    assert_eq!(assembled.dispatcher.workstation_state(), WorkstationState::Paused);
    sim.set_restock_door_open(false);
    let at_booth = wait_for(&mut client, &id, pb::DispenseStage::AwaitingValidation).await;
    assert_eq!(at_booth.stage, pb::DispenseStage::AwaitingValidation as i32);
    assert_eq!(assembled.dispatcher.workstation_state(), WorkstationState::Dispensing);
}

#[test]
fn hepb_constant_matches_the_catalog() {
    let catalog = controller::rules::catalog::Catalog::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/catalog.toml")).expect("catalog");
    assert_eq!(catalog.product("HepB").expect("HepB").gtins, [HEPB]);
    assert_eq!(catalog.product("MMR").expect("MMR").gtins, [MMR]);
    assert_eq!(catalog.product("IPV").expect("IPV").gtins, [IPV]);
}
