//! The safety property, over random orders, stock records and (mis)labelled units:
//! the dispense flow sends a unit to a booth only when verification found nothing,
//! and every unit with a violation goes to the reject bin.

use chrono::{DateTime, Duration, NaiveDate, Utc};
use controller::rules::catalog::Catalog;
use controller::dispense::flow::{Command, DispenseFlow, Event, Outbox, stage_of};
use controller::rules::inventory::{Hold, StockRecord, UnitState};
use controller::rules::order::{PatientOrder, PriorDose};
use controller::dispense::status::Stage;
use controller::scan::Decoded;
use controller::rules::verify::{Evidence, verify};
use hal::codes::{Gs1Code, UnitCode};
use hal::{BoothId, SlotAddress, Station};
use proptest::prelude::*;
use statig::blocking::IntoStateMachineExt;
use std::path::Path;
use std::sync::OnceLock;

fn catalog() -> &'static Catalog {
    static CATALOG: OnceLock<Catalog> = OnceLock::new();
    CATALOG.get_or_init(|| Catalog::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/catalog.toml")).expect("seeded catalog"))
}

fn now() -> DateTime<Utc> {
    NaiveDate::from_ymd_opt(2026, 11, 24).and_then(|d| d.and_hms_opt(10, 0, 0)).expect("time").and_utc()
}

/// A product id of the catalog, by index.
fn product(i: usize) -> &'static str {
    let products = &catalog().products;
    &products[i % products.len()].id
}

fn gtin_of(i: usize) -> String {
    catalog().products[i % catalog().products.len()].gtins[0].clone()
}

prop_compose! {
    fn order()(p in 0usize..10, age in 0i64..2500, dose in 1u32..4, attested in prop::bool::weighted(0.9),
               history in prop::collection::vec((0usize..10, 1u32..4, 1i64..400), 0..3),
               site in prop::option::of(prop_oneof![Just("deltoid"), Just("upper arm"), Just("gluteus")])) -> PatientOrder {
        let birth = now().date_naive() - Duration::days(age);
        let mut o = PatientOrder::new("P", "N", product(p), BoothId(2), dose, birth);
        o.health_check_attested = attested;
        o.site = site.map(str::to_owned);
        o.history = history.into_iter().map(|(h, n, ago)| PriorDose { product_id: product(h).into(), dose_number: n, date: now().date_naive() - Duration::days(ago.min(age)) }).collect();
        o
    }
}

prop_compose! {
    /// The unit on the belt: the record the picker was sent for, and what its label
    /// really says (usually the same unit; sometimes another product, lot or serial).
    fn unit()(p in 0usize..10, label_p in prop_oneof![4 => Just(None), 1 => (0usize..10).prop_map(Some)],
              expiry_days in -30i64..400, label_lot_differs in prop::bool::weighted(0.1), other_serial in prop::bool::weighted(0.1),
              state in prop_oneof![8 => Just(UnitState::Picked), 1 => Just(UnitState::Administered), 1 => Just(UnitState::Rejected)],
              hold in prop_oneof![8 => Just(None), 1 => Just(Some(Hold::Recalled)), 1 => Just(Some(Hold::ColdChain))],
              out_min in 0i64..40, known in prop::bool::weighted(0.95)) -> (StockRecord, Option<StockRecord>, UnitCode) {
        let expiry = now().date_naive() + Duration::days(expiry_days);
        let code = Gs1Code { gtin: gtin_of(p), expiry: Some(expiry), lot: Some("L1".into()), serial: Some("S1".into()) };
        let record = StockRecord {
            code: UnitCode::Gs1(code.clone()).canonical(),
            gtin: code.gtin.clone(),
            lot: "L1".into(),
            expiry,
            slot: SlotAddress::new(0, 0, 1),
            state,
            dispense_id: Some(if state == UnitState::Picked { "D1".into() } else { "D0".into() }),
            hold: hold.map(|h| (h, "test".to_owned())),
            left_store_at: Some(now() - Duration::minutes(out_min)),
            heat_consumed: 0.0,
        };
        let label = Gs1Code {
            gtin: label_p.map_or(code.gtin.clone(), gtin_of),
            lot: Some(if label_lot_differs { "L9".into() } else { "L1".into() }),
            serial: Some(if other_serial { "S2".into() } else { "S1".into() }),
            ..code
        };
        let scanned = UnitCode::Gs1(label);
        // The journal knows the scanned code only if it is the record's unit.
        let scanned_record = (known && scanned.canonical() == record.code).then(|| record.clone());
        (record, scanned_record, scanned)
    }
}

/// Runs the flow from allocation to the end with the verification's verdict and
/// returns every command it issued and its final stage.
fn run_flow(record: &StockRecord, decoded: Decoded, verdict: Event) -> (Vec<Command>, Stage) {
    let mut outbox = Outbox::default();
    let mut sm = DispenseFlow::new(BoothId(2)).uninitialized_state_machine().init_with_context(&mut outbox);
    let mut commands: Vec<Command> = outbox.take().into_iter().collect();
    let events = [Event::Allocated(record.clone()), Event::Picked, Event::Arrived, Event::Read(decoded), verdict, Event::Arrived, Event::Validated];
    for event in events {
        sm.handle_with_context(&event, &mut outbox);
        commands.extend(outbox.take());
    }
    (commands, stage_of(sm.state()))
}

proptest! {
    // A fixed seed keeps CI repeatable; set PROPTEST_CASES higher to search further.
    #![proptest_config(ProptestConfig { rng_seed: proptest::test_runner::RngSeed::Fixed(0x0005_afe7), ..ProptestConfig::with_cases(3_000) })]

    #[test]
    fn no_unit_with_a_violation_reaches_a_booth(order in order(), (picked, scanned_record, scanned) in unit()) {
        let violations = verify(&Evidence {
            order: &order,
            catalog: catalog(),
            scanned: &scanned,
            record: scanned_record.as_ref(),
            picked_code: &picked.code,
            dispense_id: "D1",
            expected_administration: { let at = now() + Duration::minutes(10); controller::rules::verify::JabTime { at, day: at.date_naive() } },
        });
        let decoded = Decoded { symbology: "]d2".into(), text: scanned.canonical(), code: scanned.clone() };
        let verdict = if violations.is_empty() { Event::Passed } else { Event::Violations(violations.clone()) };
        let (commands, stage) = run_flow(&picked, decoded, verdict);
        let to_booth = commands.iter().any(|c| matches!(c, Command::Convey(Station::Booth(_))));
        let to_bin = commands.iter().any(|c| matches!(c, Command::Convey(Station::Reject)));
        prop_assert_eq!(to_booth, violations.is_empty(), "violations {:?}", violations);
        prop_assert_eq!(to_bin, !violations.is_empty());
        if !violations.is_empty() {
            prop_assert_eq!(stage, Stage::Rejected);
        }
        // And what verification let through really is right for this child.
        if violations.is_empty() {
            prop_assert_eq!(scanned.canonical(), picked.code.clone());
            prop_assert!(catalog().product_of(&scanned).is_some_and(|p| p.id == order.product_id));
            prop_assert!(picked.hold.is_none() && picked.state == UnitState::Picked && order.health_check_attested);
            prop_assert!(picked.expiry >= (now() + Duration::minutes(10)).date_naive());
        }
    }
}
