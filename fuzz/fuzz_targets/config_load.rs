//! Fuzz the configuration loader: any bytes in, `Ok` or a located configuration error out,
//! never a panic, within the input budgets (`config::limits`). See `fuzz/README.md`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    match stagesweep::config::parse_str(&text, "fuzz.yaml") {
        Ok(config) => {
            let _ = stagesweep::config::summary_lines(&config);
        }
        Err(e) => assert!(
            e.problems.iter().all(|p| p.location.starts_with("fuzz.yaml")),
            "a problem without a location: {e}"
        ),
    }
});
