//! H-05: no motion is commanded while an interlock is open (SAFETY.md). The e-stop
//! is pressed while a unit is being picked: the unit waits in the hatch, and the
//! next motion (onto the belt) is sent only once the e-stop is released, never with
//! it pressed (the simulated devices count every motion command they had to refuse).

use controller::dispense::status::Stage;
use controller::rules::order::PatientOrder;
use hal::BoothId;
use std::time::Duration;

mod common;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_task_reaches_a_device_while_the_estop_is_pressed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (assembled, _client) = common::serve_workstation(dir.path(), "[hardware]\nkind = \"simulated\"\n[hardware.simulator]\nspeed = 10.0\nbooths = 2\n").await;
    let (dispatcher, sim) = (assembled.dispatcher.clone(), assembled.simulator.clone().expect("simulated"));
    let born = dispatcher.journal().clock().today() - chrono::Duration::days(300);
    let id = dispatcher.start("estop", PatientOrder::new("P1", "Wang", "HepB", BoothId(1), 1, born)).expect("start").dispense_id;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while sim.motion_counts().0 == 0 {
        assert!(tokio::time::Instant::now() < deadline, "the pick started");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    sim.set_estop(true); // mid-pick
    let refused_by_the_stop = sim.motions_refused_for_interlock();
    tokio::time::sleep(Duration::from_secs(2)).await; // 20 machine seconds pressed
    assert_eq!(sim.motions_refused_for_interlock(), refused_by_the_stop, "no motion command sent while the e-stop is pressed");
    sim.set_estop(false);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let status = dispatcher.get(&id).expect("status");
        if status.stage.is_final() || status.stage == Stage::AwaitingValidation {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{status:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(sim.motions_refused_for_interlock(), refused_by_the_stop, "nor after");
    assert_eq!(dispatcher.get(&id).expect("status").stage, Stage::AwaitingValidation, "the dispense went on once released");
}
