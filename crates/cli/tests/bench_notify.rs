//! `incasso bench notify --quick` on both databases: the bench itself
//! stops with an error when an invitation is lost, failed, or taken twice
//! by the simulated App IO, or an e-mail is missing or repeated; here its
//! last line must be the JSON of DESIGN.md's benchmarks with both phases'
//! figures, none of them lost or doubled. (Speed is not judged here.)

use crate::common::process;

use incasso_testkit::backends;
use process::bench_quick;

#[test]
fn bench_notify_quick_prints_its_json_last() {
    for backend in backends() {
        eprintln!("bench_notify_quick_prints_its_json_last on {backend:?}");
        let (v, last, stdout) = bench_quick("notify", backend);
        eprintln!("{stdout}");
        assert_eq!(v["items"], 2_000, "{last}");
        assert_eq!(v["limited_items"], 200, "{last}");
        // One citizen in 200 opted out of IO and is told by e-mail.
        assert_eq!(v["emailed"], 10, "{last}");
        assert_eq!(v["io_sent"], 1_990, "{last}");
        assert_eq!(v["duplicates"], 0, "{last}");
        for key in [
            "seconds",
            "per_s",
            "limited_seconds",
            "limited_per_s",
            "limited_allowed_per_s",
            "peak_rss_mb",
        ] {
            assert!(v[key].as_f64().is_some_and(|x| x > 0.0), "{key} in {last}");
        }
        // The rate-limited phase cannot beat what IO allows (a second's
        // burst aside).
        let ratio = v["limited_ratio"].as_f64().unwrap();
        assert!(ratio > 0.0 && ratio < 1.5, "{last}");
    }
}
