//! The scheduled jobs' turns: however many processes ask at once, one
//! takes each due time.

use chrono::{Duration, TimeZone, Utc};
use incasso_store::Store;
use incasso_testkit::{backends, fresh_database_url};

#[tokio::test]
async fn one_process_takes_each_due_turn() {
    for backend in backends() {
        let url = fresh_database_url(backend).await;
        // Four "processes": a pool of their own each, on one database.
        let mut stores = Vec::new();
        for _ in 0..4 {
            stores.push(Store::connect(&url).await.unwrap());
        }
        let every = Duration::minutes(1);
        let start = Utc.with_ymd_and_hms(2026, 12, 4, 10, 0, 0).unwrap();
        let ask = |at: chrono::DateTime<Utc>| {
            let stores = stores.clone();
            async move {
                let mut asks = tokio::task::JoinSet::new();
                for (i, store) in stores.iter().enumerate() {
                    for j in 0..5 {
                        let store = store.clone();
                        asks.spawn(async move {
                            store
                                .take_job_turn("fetch_flows", &format!("p{i}-{j}"), at, every, at)
                                .await
                                .unwrap()
                        });
                    }
                }
                let mut taken = 0;
                while let Some(t) = asks.join_next().await {
                    taken += t.unwrap() as u32;
                }
                taken
            }
        };
        assert_eq!(ask(start).await, 1, "{backend:?}: the first turn");
        assert_eq!(
            ask(start + Duration::seconds(59)).await,
            0,
            "{backend:?}: not yet due"
        );
        assert_eq!(ask(start + every).await, 1, "{backend:?}: the next turn");
        // A late process (one slept, say) takes one turn, not those missed.
        assert_eq!(ask(start + every * 10).await, 1, "{backend:?}");
        assert_eq!(
            ask(start + every * 10 + Duration::seconds(1)).await,
            0,
            "{backend:?}"
        );
        // Another job has turns of its own; its first is when asked.
        let first = start + Duration::hours(1);
        assert!(
            !stores[0]
                .take_job_turn("reminders", "p0", start, every, first)
                .await
                .unwrap()
        );
        assert!(
            stores[1]
                .take_job_turn("reminders", "p1", first, every, first)
                .await
                .unwrap()
        );
        for s in stores {
            s.close().await;
        }
    }
}
