//! H-03: the clinic's confirmations are idempotent (SAFETY.md). A retried or
//! double-tapped validation, accepted twice before the runner moves on, is acted on
//! once: the nurse's administration is then taken and the dose recorded. The same
//! confirmation again, even after the dispense ended, gets the same answer.

use controller::dispense::status::Stage;
use controller::rules::order::PatientOrder;
use hal::BoothId;
use std::time::Duration;

mod common;

async fn wait_for(dispatcher: &controller::dispatch::Dispatcher, id: &str, stage: Stage) -> controller::dispense::status::DispenseStatus {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let status = dispatcher.get(id).expect("status");
        if status.stage == stage || status.stage.is_final() {
            return status;
        }
        assert!(tokio::time::Instant::now() < deadline, "{id} never reached {stage:?}: {status:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_double_tapped_validation_is_acted_on_once_and_the_dose_is_recorded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (assembled, _client) = common::serve_workstation(dir.path(), "[hardware]\nkind = \"simulated\"\n[hardware.simulator]\nspeed = 40.0\nbooths = 2\n").await;
    let dispatcher = assembled.dispatcher.clone();
    let born = dispatcher.journal().clock().today() - chrono::Duration::days(300);
    let id = dispatcher.start("double-tap", PatientOrder::new("P1", "Wang", "HepB", BoothId(1), 1, born)).expect("start").dispense_id;
    wait_for(&dispatcher, &id, Stage::AwaitingValidation).await;

    // Both taps arrive before the runner has moved on.
    dispatcher.confirm_validation(&id, None).expect("first tap");
    dispatcher.confirm_validation(&id, None).expect("the same confirmation again gets the same answer");
    let at_administration = wait_for(&dispatcher, &id, Stage::AwaitingAdministration).await;
    assert_eq!(at_administration.stage, Stage::AwaitingAdministration, "{at_administration:?}");
    dispatcher.confirm_validation(&id, None).expect("a late retry of the validation is still answered the same");

    dispatcher.confirm_administration(&id, "nurse-1", None).expect("the nurse's administration is taken");
    dispatcher.confirm_administration(&id, "nurse-1", None).expect("and its retry answered the same");
    let done = wait_for(&dispatcher, &id, Stage::Administered).await;
    assert_eq!(done.stage, Stage::Administered, "the dose given is recorded: {done:?}");
    assert_eq!(done.administered_by.as_deref(), Some("nurse-1"));
    // After the end, the retry still gets the same answer, and nothing is recorded twice.
    dispatcher.confirm_administration(&id, "nurse-1", None).expect("a retry after the end");
    let administered = dispatcher.journal().entries(&id).expect("entries").iter().filter(|e| e.outcome() == Some(&controller::journal::Outcome::Administered)).count();
    assert_eq!(administered, 1, "acted on once");
}

/// H-06: what cannot be read is held (SAFETY.md). A unit waiting at its booth whose
/// stock record can no longer be read is never given: the runner ends the dispense
/// at once when it looks (a hold committed anywhere makes it look) and the clinic's
/// confirmation is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unit_whose_record_cannot_be_read_is_not_given() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (assembled, _client) = common::serve_workstation(dir.path(), "[hardware]\nkind = \"simulated\"\n[hardware.simulator]\nspeed = 40.0\nbooths = 2\n").await;
    let dispatcher = assembled.dispatcher.clone();
    let born = dispatcher.journal().clock().today() - chrono::Duration::days(300);
    let id = dispatcher.start("unreadable", PatientOrder::new("P1", "Wang", "HepB", BoothId(1), 1, born)).expect("start").dispense_id;
    let at_booth = wait_for(&dispatcher, &id, Stage::AwaitingValidation).await;
    let code = at_booth.unit.expect("unit").code;

    // The unit's record becomes unreadable; a hold on another unit makes the runner look.
    let conn = rusqlite::Connection::open(dir.path().join("var/journal.db")).expect("journal");
    conn.execute("UPDATE stock_units SET state = 'melted' WHERE code = ?1", [&code]).expect("corrupt");
    assert!(dispatcher.journal().stock_record(&code).is_err(), "the record is unreadable now");
    let other = dispatcher.journal().all_in_store().expect("stock").into_iter().next().expect("another unit").code;
    dispatcher.quarantine_unit(&other, "look again", "pharmacy").expect("a hold elsewhere");

    let ended = wait_for(&dispatcher, &id, Stage::Administered).await;
    assert!(ended.stage.is_final() && ended.stage != Stage::Administered, "the runner refused the unit it could not read: {ended:?}");
    assert!(dispatcher.confirm_validation(&id, None).is_err(), "and the clinic's validation is refused");
}

/// A confirmation (or a cancel, or a crew's maintenance entry) sent to a controller
/// that has stopped (crashed, in simulation) is refused as not ready, never answered
/// as taken: nothing would act on it, and a caller told "taken" would not send it
/// again to the controller that comes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_confirmation_to_a_stopped_controller_is_refused_not_swallowed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (assembled, _client) = common::serve_workstation(dir.path(), "[hardware]\nkind = \"simulated\"\n[hardware.simulator]\nspeed = 40.0\nbooths = 2\n").await;
    let dispatcher = assembled.dispatcher.clone();
    let born = dispatcher.journal().clock().today() - chrono::Duration::days(300);
    let id = dispatcher.start("while-down", PatientOrder::new("P1", "Wang", "HepB", BoothId(1), 1, born)).expect("start").dispense_id;
    wait_for(&dispatcher, &id, Stage::AwaitingValidation).await;

    dispatcher.stop_as_if_crashed();
    let refused = dispatcher.confirm_validation(&id, None);
    assert!(matches!(refused, Err(controller::dispatch::DispatchError::NotReady(_))), "validation sent while down: {refused:?}");
    let refused = dispatcher.confirm_administration(&id, "nurse-1", None);
    assert!(matches!(refused, Err(controller::dispatch::DispatchError::NotReady(_))), "administration sent while down: {refused:?}");
    let refused = dispatcher.cancel(&id, "the patient left", "clinic").await;
    assert!(matches!(refused, Err(controller::dispatch::DispatchError::NotReady(_))), "cancel sent while down: {refused:?}");
    let refused = dispatcher.enter_maintenance("crew-1", "belt cleaning", Duration::from_secs(600), true);
    assert!(matches!(refused, Err(controller::dispatch::DispatchError::NotReady(_))), "maintenance entered while down: {refused:?}");
    // A recall too: taken as final, it would be lost with this controller (hunt seed 142).
    let refused = dispatcher.recall_batch(None, "EARLY", "manufacturer's notice", "pharmacist");
    assert!(matches!(refused, Err(controller::dispatch::DispatchError::NotReady(_))), "recall sent while down: {refused:?}");
}
