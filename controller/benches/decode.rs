//! Decoding benchmark: how fast and how reliably the scan pipeline reads the
//! simulator's label frames as rendered (curved, tilted, the odd glare), blurred
//! and low-contrast. Prints figures;
//! run with `cargo bench -p controller --bench decode [-- FRAMES]`.

use controller::scan::{Preprocessing, decode_staged};
use hal::Frame;
use hal::codes::Gs1Code;
use rand::SeedableRng;
use std::time::{Duration, Instant};

fn box_blur(f: &Frame) -> Frame {
    let (w, h) = (f.width as usize, f.height as usize);
    let mut out = f.pixels.clone();
    for y in 1..h - 1 {
        for x in 1..w - 1 {
            let sum: u32 = (0..3).flat_map(|dy| (0..3).map(move |dx| (dy, dx))).map(|(dy, dx)| u32::from(f.pixels[(y + dy - 1) * w + x + dx - 1])).sum();
            out[y * w + x] = (sum / 9) as u8;
        }
    }
    Frame { pixels: out, ..f.clone() }
}

fn contrast(f: &Frame, factor: f64) -> Frame {
    Frame { pixels: f.pixels.iter().map(|&p| (128.0 + (f64::from(p) - 128.0) * factor) as u8).collect(), ..f.clone() }
}

fn main() {
    let n: usize = std::env::args().skip(1).find_map(|a| a.parse().ok()).unwrap_or(150);
    let mut rng = rand::rngs::SmallRng::seed_from_u64(9);
    let variants: [(&str, fn(&Frame) -> Frame); 4] = [
        ("as rendered", |f| f.clone()),
        ("blur 3x3 x3", |f| box_blur(&box_blur(&box_blur(f)))),
        ("low contrast 30%", |f| contrast(f, 0.3)),
        ("low contrast 20%", |f| contrast(f, 0.2)),
    ];
    let mut labels = Vec::new();
    for i in 0..n {
        let code = Gs1Code {
            gtin: "06901234000016".into(),
            expiry: chrono::NaiveDate::from_ymd_opt(2027, 6, 30),
            lot: Some(format!("HB25{:03}", i % 40)),
            serial: Some(format!("SN{:08}", i * 7919)),
        };
        let symbol = simulator::label::encode_symbol(&code.element_string()).expect("encodes");
        let frame = simulator::label::render_frame(Some(&symbol), (i % 3) as u64, &mut rng);
        labels.push((code.human_readable(), frame));
    }
    println!("decoder: rxing {} (DataMatrix + Code 128, plain search), {n} frames of {}x{} per variant", "0.9", labels[0].1.width, labels[0].1.height);
    for (name, transform) in variants {
        let frames: Vec<(String, Frame)> = labels.iter().map(|(want, f)| (want.clone(), transform(f))).collect();
        let (mut ok, mut total, mut worst) = (0, Duration::ZERO, Duration::ZERO);
        let mut stages = [0usize; 3];
        for (want, frame) in &frames {
            let t = Instant::now();
            let read = decode_staged(frame);
            let took = t.elapsed();
            total += took;
            worst = worst.max(took);
            if let Ok((d, stage)) = read
                && d.code.canonical() == *want
            {
                ok += 1;
                stages[match stage {
                    Preprocessing::WholeFrame => 0,
                    Preprocessing::LabelRegion => 1,
                    Preprocessing::Stretched => 2,
                }] += 1;
            }
        }
        println!(
            "{name:18} read {ok:4}/{n} ({:5.1} %)  mean {:6.3} ms/frame  worst {:6.3} ms  (whole frame {}, label region {}, stretched {})",
            100.0 * ok as f64 / n as f64,
            total.as_secs_f64() * 1e3 / n as f64,
            worst.as_secs_f64() * 1e3,
            stages[0],
            stages[1],
            stages[2]
        );
    }
}
