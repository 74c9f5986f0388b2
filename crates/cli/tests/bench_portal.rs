//! `incasso bench portal --quick` on both databases: every visit it makes
//! (home, notice search, notice found, its PDF, the cart, Checkout)
//! answers as a browser expects (the bench stops otherwise), and its last
//! line is the JSON of DESIGN.md's benchmarks. (Its figures are not judged
//! here: timings belong to `incasso bench`, not to tests.)

use crate::common::process;

use incasso_testkit::backends;
use process::{database_for, incasso};

#[test]
fn bench_portal_quick_prints_its_json_last() {
    for backend in backends() {
        eprintln!("bench_portal_quick_prints_its_json_last on {backend:?}");
        let db = database_for(backend);
        let out = incasso()
            .args(["bench", "portal", "--quick"])
            .args(db.iter().flat_map(|url| ["--database-url", url]))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8(out.stdout).unwrap();
        let last = stdout.lines().last().unwrap();
        let v: serde_json::Value = serde_json::from_str(last).unwrap();
        assert_eq!(v["bench"], "portal");
        assert_eq!(
            v["backend"],
            if db.is_some() { "postgres" } else { "sqlite" }
        );
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
