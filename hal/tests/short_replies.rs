//! A device that answers a register read with a valid frame of the wrong length
//! (a late answer to an earlier request, a confused firmware) must never panic the
//! controller or be read as data: the link drops the line, asks again, and in the
//! end reports a defined error (SAFETY.md, H-07).

use hal::ErrorKind;
use hal::modbus::link::{Framing, LinkTiming, MemoryPort, ModbusLink, Transport};
use proptest::prelude::*;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A Modbus TCP device on an in-memory line that answers every read with `words`,
/// whatever count was asked for (real MBAP framing, written by hand).
fn device(words: Vec<u16>) -> Transport {
    let connect = move || {
        let (ours, mut theirs) = tokio::io::duplex(4096);
        let words = words.clone();
        tokio::spawn(async move {
            let mut request = [0u8; 12];
            while theirs.read_exact(&mut request).await.is_ok() {
                let byte_count = (words.len() * 2) as u8;
                let mut frame = vec![request[0], request[1], 0, 0];
                frame.extend_from_slice(&(3 + u16::from(byte_count)).to_be_bytes());
                frame.extend_from_slice(&[request[6], request[7], byte_count]);
                frame.extend(words.iter().flat_map(|w| w.to_be_bytes()));
                if theirs.write_all(&frame).await.is_err() {
                    return;
                }
            }
        });
        Ok(ours)
    };
    Transport::Memory(MemoryPort { name: "liar".into(), framing: Framing::Tcp, unit: 1, connect: Arc::new(connect) })
}

fn link(words: Vec<u16>) -> ModbusLink {
    let timing = LinkTiming { request_timeout_ms: 200, retries: 1, backoff_ms: 1, ..LinkTiming::default() };
    ModbusLink::new("liar", device(words), timing)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn a_read_is_the_registers_asked_for_or_a_defined_error(asked in 1u16..20, words in proptest::collection::vec(any::<u16>(), 0..24), holding in any::<bool>()) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let link = link(words.clone());
        let read = runtime.block_on(async { if holding { link.read_holding(7, asked).await } else { link.read_input(7, asked).await } });
        match read {
            Ok(values) => prop_assert_eq!(values, words, "data only when the answer is what was asked"),
            Err(e) => {
                prop_assert_ne!(words.len(), usize::from(asked), "a right answer is taken: {}", e);
                prop_assert!(matches!(e.kind(), ErrorKind::NoResponse), "a defined kind: {:?}", e.kind());
                prop_assert!(e.to_string().contains("asked for"), "the error says what was wrong: {}", e);
            }
        }
    }
}
