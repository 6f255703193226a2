//! The simulator enforces the real machine's rules, on paused tokio time.

use hal::{BoothId, ErrorKind, SlotAddress, Station, TrackingId, TrayState};
use simulator::{SimConfig, SimWorkstation};
use std::time::Duration;

mod support;
use support::unit;


fn sim() -> SimWorkstation {
    SimWorkstation::new(SimConfig::default(), &[unit(SlotAddress::new(0, 0, 0), "A"), unit(SlotAddress::new(3, 4, 9), "B")])
}

#[tokio::test(start_paused = true)]
async fn picking_takes_longer_for_farther_slots() {
    let sim = sim();
    let d = sim.devices();
    let t0 = tokio::time::Instant::now();
    d.store.pick_to_hatch(SlotAddress::new(0, 0, 0), TrackingId(1)).await.expect("near pick");
    assert_eq!(t0.elapsed(), Duration::from_secs(4), "nearest slot: pick_min_s");
    d.store.release_to_belt(TrackingId(1)).await.expect("release");
    let t1 = tokio::time::Instant::now();
    d.store.pick_to_hatch(SlotAddress::new(3, 4, 9), TrackingId(2)).await.expect("far pick");
    assert_eq!(t1.elapsed(), Duration::from_secs(8), "farthest slot: pick_max_s");
    assert_eq!(sim.occupied_slots(), 0);
}

#[tokio::test(start_paused = true)]
async fn motion_is_refused_while_an_interlock_is_open() {
    let sim = sim();
    let d = sim.devices();
    sim.set_estop(true);
    let err = d.store.pick_to_hatch(SlotAddress::new(0, 0, 0), TrackingId(1)).await.expect_err("e-stop");
    assert_eq!(err.kind(), ErrorKind::Interlock);
    assert!(err.to_string().contains("e-stop"), "{err}");
    assert_eq!((sim.motions_started(), sim.occupied_slots()), (0, 2), "nothing moved");
    sim.set_estop(false);
    d.store.pick_to_hatch(SlotAddress::new(0, 0, 0), TrackingId(1)).await.expect("pick after reset");
}

#[tokio::test(start_paused = true)]
async fn the_belt_runs_forwards_and_a_tray_takes_one_unit() {
    let sim = sim();
    let d = sim.devices();
    for (carrier, slot) in [(1, SlotAddress::new(0, 0, 0)), (2, SlotAddress::new(3, 4, 9))] {
        d.store.pick_to_hatch(slot, TrackingId(carrier)).await.expect("pick");
        d.store.release_to_belt(TrackingId(carrier)).await.expect("release");
    }
    let t0 = tokio::time::Instant::now();
    d.conveyor.convey(TrackingId(1), Station::Scan).await.expect("to scan");
    assert_eq!(t0.elapsed(), Duration::from_secs(4), "1 m at 0.25 m/s");
    let back = d.conveyor.convey(TrackingId(1), Station::Hatch).await.expect_err("no running back");
    assert_eq!(back.kind(), ErrorKind::InvalidTarget);

    d.conveyor.convey(TrackingId(1), Station::Booth(BoothId(2))).await.expect("to booth 2");
    assert_eq!(d.booths.tray(BoothId(2)).await.expect("tray"), TrayState::Occupied);
    let busy = d.conveyor.convey(TrackingId(2), Station::Booth(BoothId(2))).await.expect_err("tray occupied");
    assert_eq!(busy.kind(), ErrorKind::Busy);
    d.conveyor.convey(TrackingId(2), Station::Reject).await.expect("to the bin");
    assert_eq!(sim.reject_bin().len(), 1);

    // The simulated nurse takes the unit after nurse_pickup_s.
    tokio::time::sleep(Duration::from_secs(7)).await;
    assert_eq!(d.booths.tray(BoothId(2)).await.expect("tray"), TrayState::Empty);
    assert_eq!(sim.deliveries().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_booth_gate_holds_one_waiting_unit_that_drops_only_into_an_empty_tray() {
    let sim = SimWorkstation::new(SimConfig::default(), &[unit(SlotAddress::new(0, 0, 0), "A"), unit(SlotAddress::new(0, 0, 1), "B"), unit(SlotAddress::new(0, 0, 2), "C")]);
    let d = sim.devices();
    for c in 1..=3 {
        d.store.pick_to_hatch(SlotAddress::new(0, 0, c as u8 - 1), TrackingId(c)).await.expect("pick");
        d.store.release_to_belt(TrackingId(c)).await.expect("release");
    }
    d.conveyor.convey(TrackingId(2), Station::Gate(BoothId(2))).await.expect("to the gate");
    d.conveyor.convey(TrackingId(1), Station::Booth(BoothId(2))).await.expect("straight into the tray");
    assert!(d.conveyor.units_on_belt().await.expect("belt").contains(&(TrackingId(2), Station::Gate(BoothId(2)))));
    let second = d.conveyor.convey(TrackingId(3), Station::Gate(BoothId(2))).await.expect_err("the gate holds one");
    assert_eq!(second.kind(), ErrorKind::Busy);
    let occupied = d.conveyor.convey(TrackingId(2), Station::Booth(BoothId(2))).await.expect_err("tray occupied");
    assert_eq!(occupied.kind(), ErrorKind::Busy);
    let elsewhere = d.conveyor.convey(TrackingId(2), Station::Booth(BoothId(3))).await.expect_err("only its own tray");
    assert_eq!(elsewhere.kind(), ErrorKind::InvalidTarget);

    tokio::time::sleep(Duration::from_secs(7)).await; // the nurse empties the tray
    let t0 = tokio::time::Instant::now();
    d.conveyor.convey(TrackingId(2), Station::Booth(BoothId(2))).await.expect("drops");
    assert_eq!(t0.elapsed(), Duration::from_millis(500), "gate_drop_s");
    let delivered: Vec<(BoothId, bool)> = sim.deliveries().iter().map(|x| (x.booth, x.label.ends_with('B'))).collect();
    assert_eq!(delivered, [(BoothId(2), false), (BoothId(2), true)], "A, then B from the gate");
    // A unit refused at its gate rejoins the belt to the bin, never a tray.
    d.conveyor.convey(TrackingId(3), Station::Gate(BoothId(2))).await.expect("the gate is free again");
    d.conveyor.convey(TrackingId(3), Station::Reject).await.expect("back to the belt and the bin");
    assert_eq!(sim.reject_bin().len(), 1);
    assert_eq!(sim.deliveries().len(), 2);
}

#[tokio::test(start_paused = true)]
async fn the_camera_sees_the_unit_at_the_scan_station_only() {
    let sim = sim();
    let d = sim.devices();
    let empty = d.camera.grab_frame().await.expect("frame");
    assert_eq!((empty.width, empty.height), (simulator::label::FRAME_WIDTH, simulator::label::FRAME_HEIGHT));
    d.store.pick_to_hatch(SlotAddress::new(0, 0, 0), TrackingId(1)).await.expect("pick");
    d.store.release_to_belt(TrackingId(1)).await.expect("release");
    d.conveyor.convey(TrackingId(1), Station::Scan).await.expect("to scan");
    // Paper is bright; printed modules make bright/dark edges along the rows.
    let paper = |f: &hal::Frame| f.pixels.iter().filter(|&&p| p > 180).count();
    let edges = |f: &hal::Frame| f.pixels.windows(2).filter(|w| (w[0] > 180 && w[1] < 130) || (w[0] < 130 && w[1] > 180)).count();
    assert_eq!((paper(&empty), edges(&empty)), (0, 0), "no label without a unit");
    // Each frame's look is drawn at random (a faded print, a defocus, the label
    // turned away): the sharpest of a turn's frames shows the printed modules.
    let mut sharpest = (0, 0);
    for _ in 0..simulator::label::FRAMES_PER_TURN {
        let with_label = d.camera.grab_frame().await.expect("frame");
        sharpest = sharpest.max((edges(&with_label), paper(&with_label)));
    }
    assert!(sharpest.1 > 5_000, "the label is in view: {}", sharpest.1);
    assert!(sharpest.0 > 500, "the label's modules are printed: {}", sharpest.0);
}

#[tokio::test(start_paused = true)]
async fn bad_targets_are_named() {
    let sim = sim();
    let d = sim.devices();
    let no_slot = d.store.pick_to_hatch(SlotAddress::new(9, 0, 0), TrackingId(1)).await.expect_err("no such slot");
    assert_eq!(no_slot.kind(), ErrorKind::InvalidTarget);
    assert!(no_slot.to_string().contains("R9-0-0"), "{no_slot}");
    let empty = d.store.pick_to_hatch(SlotAddress::new(1, 1, 1), TrackingId(1)).await.expect_err("empty slot");
    assert!(empty.to_string().contains("empty"), "{empty}");
    let not_on_belt = d.conveyor.convey(TrackingId(5), Station::Scan).await.expect_err("unknown carrier");
    assert!(not_on_belt.to_string().contains("carrier 5"), "{not_on_belt}");
    assert_eq!(d.booths.tray(BoothId(7)).await.expect_err("no booth 7").kind(), ErrorKind::InvalidTarget);
}
