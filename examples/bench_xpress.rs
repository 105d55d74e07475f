//! How fast and how far xpress compresses answers: each file named is compressed as one answer
//! (repeatedly, for at least half a second), decoded again and compared.
//! `cargo run --release --example bench_xpress FILE...`
//! With `XPRESS_OUT=DIR`, each file's xpress stream is also written there as `NAME.xpress`.

use ferry::wsus::xpress::{Encoder, unframe};
use std::time::{Duration, Instant};

fn main() {
    let files: Vec<String> = std::env::args().skip(1).collect();
    assert!(!files.is_empty(), "usage: bench_xpress FILE...");
    let out_dir = std::env::var_os("XPRESS_OUT").map(std::path::PathBuf::from);
    let mut encoder = Encoder::new();
    let (mut total_in, mut total_out, mut total_time) = (0usize, 0usize, Duration::ZERO);
    for f in &files {
        let input = std::fs::read(f).expect("readable file");
        let mut rounds = 0u32;
        let started = Instant::now();
        let mut framed = Vec::new();
        while rounds < 3 || started.elapsed() < Duration::from_millis(500) {
            framed = encoder.frame([&input[..]]);
            rounds += 1;
        }
        let per = started.elapsed() / rounds;
        assert_eq!(unframe(&framed, input.len()).expect("decodes"), input, "{f}: round trip");
        let decode_started = Instant::now();
        for _ in 0..rounds {
            std::hint::black_box(unframe(&framed, input.len()).unwrap());
        }
        let decode = decode_started.elapsed() / rounds;
        if let Some(dir) = &out_dir {
            let name = f.trim_start_matches("./").replace('/', "_");
            std::fs::write(dir.join(format!("{name}.xpress")), &framed)
                .expect("writable XPRESS_OUT");
        }
        println!(
            "{f}: {} -> {} bytes ({:.3}), compress {:.0} MB/s, decode {:.0} MB/s",
            input.len(),
            framed.len(),
            framed.len() as f64 / input.len() as f64,
            input.len() as f64 / per.as_secs_f64() / 1e6,
            input.len() as f64 / decode.as_secs_f64() / 1e6,
        );
        total_in += input.len();
        total_out += framed.len();
        total_time += per;
    }
    println!(
        "all {} files: {total_in} -> {total_out} bytes ({:.3}), compress {:.0} MB/s",
        files.len(),
        total_out as f64 / total_in as f64,
        total_in as f64 / total_time.as_secs_f64() / 1e6
    );
}
