//! `incasso bench portal --quick` on both databases: every visit it makes
//! (home, notice search, notice found, its PDF, the cart, Checkout)
//! answers as a browser expects (the bench stops otherwise), and its last
//! line is the JSON of DESIGN.md's benchmarks. (Its figures are not judged
//! here: timings belong to `incasso bench`, not to tests.)

use crate::common::process;

use incasso_testkit::backends;
use process::bench_quick;

#[test]
fn bench_portal_quick_prints_its_json_last() {
    for backend in backends() {
        eprintln!("bench_portal_quick_prints_its_json_last on {backend:?}");
        let (v, last, _) = bench_quick("portal", backend);
        // 60 visits of seven page views each, at the offered rate.
        assert_eq!(v["items"], 420, "{last}");
        for key in [
            "seconds",
            "per_s",
            "p50_ms",
            "p99_ms",
            "max_per_s",
            "peak_rss_mb",
        ] {
            assert!(v[key].as_f64().is_some_and(|x| x > 0.0), "{key} in {last}");
        }
        for kind in [
            "home",
            "notice_search",
            "notice_found",
            "notice_pdf",
            "add_to_cart",
            "cart",
            "checkout",
        ] {
            assert!(
                v["kinds"][kind]["p99_ms"].as_f64().is_some(),
                "{kind} in {last}"
            );
        }
    }
}
