//! The SQL warehouse route, and which warehouse ids exist.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::api_error::ApiError;
use crate::auth::Authenticated;
use crate::state::AppState;

/// `404 RESOURCE_DOES_NOT_EXIST` unless `id` names a configured warehouse (any id does when none
/// are configured). Execute answers the same as `GET /api/2.0/sql/warehouses/{id}` [?]: the
/// reference does not document the status, and 404 with this code is what docs/DATABRICKS-WIRE.md §6 and §11 describe.
pub(super) fn check_warehouse(state: &AppState, id: &str) -> Result<(), ApiError> {
    let exists = !id.is_empty()
        && state
            .config
            .warehouses
            .as_ref()
            .is_none_or(|known| known.iter().any(|w| w == id));
    if exists {
        Ok(())
    } else {
        Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "RESOURCE_DOES_NOT_EXIST",
            format!("Warehouse {id} does not exist."),
        ))
    }
}

/// `GET /api/2.0/sql/warehouses/{id}`: a running serverless warehouse (a subset of
/// GetWarehouseResponse; fields of the real answer that nothing here uses are left out).
pub(super) async fn get_warehouse(
    State(state): State<AppState>,
    _auth: Authenticated,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    check_warehouse(&state, &id)?;
    let host = state.host_url(&headers);
    let authority = host.trim_start_matches("http://");
    let (hostname, port) = authority
        .rsplit_once(':')
        .and_then(|(h, p)| Some((h, p.parse::<u16>().ok()?)))
        .unwrap_or((authority, 80));
    let http_path = format!("/sql/1.0/warehouses/{id}");
    Ok(Json(json!({
        "id": id,
        "name": format!("Emulator warehouse {id}"),
        "state": "RUNNING",
        "cluster_size": "2X-Small",
        "warehouse_type": "PRO",
        "enable_serverless_compute": true,
        "enable_photon": true,
        "num_clusters": 1,
        "min_num_clusters": 1,
        "max_num_clusters": 1,
        "num_active_sessions": 0,
        "auto_stop_mins": 10,
        "spot_instance_policy": "COST_OPTIMIZED",
        "channel": {"name": "CHANNEL_NAME_CURRENT"},
        "health": {"status": "HEALTHY"},
        "creator_name": "emulator-owner@example.com",
        "jdbc_url": format!(
            "jdbc:databricks://{authority}/default;transportMode=http;ssl=0;AuthMech=11;httpPath={http_path};"
        ),
        "odbc_params": {
            "hostname": hostname,
            "path": http_path,
            "port": port,
            "protocol": "http",
        },
    }))
    .into_response())
}
