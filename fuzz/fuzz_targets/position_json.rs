//! A debt position as JSON, checked by core's rules: what the GPD API's
//! create and update reach once their wire model is mapped (`gpd_json`
//! fuzzes that mapping, crates/gpd), without a database.
//! Also the pure state queries every door asks of a stored position.
#![no_main]

use chrono::TimeZone;
use incasso_core::position::{DebtPosition, PositionRules};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(position) = serde_json::from_slice::<DebtPosition>(data) else {
        return;
    };
    let now = chrono::Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap();
    let rules = PositionRules {
        ente_fiscal_code: "80000130585",
        now,
        segregation_codes: &[0, 1, 47],
    };
    let _ = position.validate(&rules);
    let _ = position.total_amount();
    let _ = position.effective_status(now);
    let _ = position.check_updatable(now);
    let _ = position.check_deletable();
});
