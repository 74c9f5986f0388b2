//! `incasso bench digitpos --quick` on both databases: 60 payments of use
//! case 1 end to end (create, Checkout, receipt, PAID webhook at the
//! demo's receiver), each checked by the bench (it stops otherwise), and
//! its last line the JSON of DESIGN.md's benchmarks. (Its figures are not
//! judged here: timings belong to `incasso bench`, not to tests.)

use crate::common::process;

use incasso_testkit::backends;
use process::bench_quick;

#[test]
fn bench_digitpos_quick_prints_its_json_last() {
    for backend in backends() {
        eprintln!("bench_digitpos_quick_prints_its_json_last on {backend:?}");
        let (v, last, _) = bench_quick("digitpos", backend);
        assert_eq!(v["items"], 60, "{last}");
        // The demo registers a webhook receiver: every payment waits for
        // its PAID delivery.
        assert_eq!(v["webhooks"], true, "{last}");
        for key in [
            "seconds",
            "per_s",
            "p50_ms",
            "p99_ms",
            "payment_p99_ms",
            "webhook_p99_ms",
            "peak_rss_mb",
        ] {
            assert!(v[key].as_f64().is_some_and(|x| x > 0.0), "{key} in {last}");
        }
    }
}
