//! The server's integration tests, one module per area, built as one test
//! binary: each binary links the whole stack (some 150 MB unoptimized), and
//! forty of them filled the disk of a CI machine and spent minutes linking.
//! The fixtures under `common/` are declared here once for every module.

#[allow(dead_code)]
mod common {
    pub mod app;
    pub mod backoffice;
    pub mod bo_world;
    pub mod browser;
    pub mod catalogue;
    pub mod crawl;
    pub mod desk_pos_world;
    pub mod desk_world;
    pub mod page_check;
    pub mod pay_world;
    pub mod portal;
    pub mod portal_citizen_world;
    pub mod portal_receipts_world;
}

mod api;
mod api_conformance;
mod backoffice;
mod backoffice_admin;
mod backoffice_browser;
mod backoffice_dashboard;
mod backoffice_desk;
mod backoffice_desk_browser;
mod backoffice_desk_pos;
mod backoffice_desk_pos_browser;
mod backoffice_frame;
mod backoffice_notify;
mod backoffice_notify_email;
mod backoffice_pages_browser;
mod backoffice_pos_webhooks;
mod backoffice_pos_webhooks_browser;
mod backoffice_positions;
mod backoffice_reporting;
mod backoffice_spid;
mod backoffice_supplies;
mod backoffice_tenancy;
mod bus;
mod digitpos;
mod faults;
mod gpd_conformance;
mod gpd_upload;
mod gpd_v2;
mod gpd_v3;
mod http_paths;
mod metrics;
mod node;
mod node_access;
mod portal_citizen;
mod portal_citizen_browser;
mod portal_frame;
mod portal_frame_browser;
mod portal_limits;
mod portal_pay;
mod portal_pay_browser;
mod portal_receipts;
mod portal_receipts_browser;
mod portal_spontaneous;
mod portal_spontaneous_browser;
mod pos;
mod recon_paths;
mod reconcile;
mod webhooks;
