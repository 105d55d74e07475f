//! The routes of `/api/v1`, one handler each: extract, call `AdminService` or read the store on
//! the blocking pool, answer a shape from `dto.rs`.

use super::dto;
use super::{ApiError, ApiState, JsonBody, Params, Reply, Segment, with_store};
use crate::admin::{self, Action, AdminError, AdminService, Approve};
use crate::store::{ALL_COMPUTERS, ApprovalState, CleanupOptions, UpdateFilter};
use axum::Router;
use axum::extract::State;
use axum::routing::{delete, get, post};

type Answer = Result<Reply, ApiError>;

pub(super) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/api", get(index))
        .route("/api/v1", get(index))
        .route("/api/v1/", get(index))
        .route("/api/v1/status", get(status))
        .route("/api/v1/updates", get(updates))
        .route("/api/v1/updates/{id}", get(update))
        .route("/api/v1/updates/approve", post(approve))
        .route("/api/v1/updates/unapprove", post(unapprove))
        .route("/api/v1/updates/decline", post(decline))
        .route("/api/v1/updates/undecline", post(undecline))
        .route("/api/v1/groups", get(groups).post(create_group))
        .route("/api/v1/groups/{name}", delete(remove_group))
        .route("/api/v1/groups/{name}/move", post(move_group))
        .route("/api/v1/computers", get(computers))
        .route("/api/v1/computers/move", post(move_computers))
        .route("/api/v1/computers/{name}", delete(remove_computer))
        .route("/api/v1/targeting", get(targeting).put(set_targeting))
        .route("/api/v1/classifications", get(|s| categories(s, "UpdateClassification")))
        .route("/api/v1/products", get(|s| categories(s, "Product")))
        .route("/api/v1/trust", get(trust))
        .route("/api/v1/rules", get(rules).post(add_rule))
        .route("/api/v1/rules/apply", post(apply_rules))
        .route("/api/v1/rules/{rule}", delete(remove_rule))
        .route("/api/v1/rules/{rule}/enable", post(|s, p| enable_rule(s, p, true)))
        .route("/api/v1/rules/{rule}/disable", post(|s, p| enable_rule(s, p, false)))
        .route("/api/v1/report", get(report))
        .route("/api/v1/cleanup", post(cleanup))
        .route("/api/v1/imports", get(imports))
}

/// A query value, empty counting as absent.
fn given(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.is_empty())
}

async fn index() -> Answer {
    Reply::ok(&dto::Index { api: "ferry admin API v1", see: "README.md, Administration" })
}

async fn status(State(s): State<ApiState>) -> Answer {
    with_store(&s, |store| {
        Reply::ok(&dto::Status {
            catalog: store.catalog_status()?,
            computers: store.computers()?.len(),
            groups: store.groups()?.len(),
            approvals: store.approvals()?.len(),
            imports: store.imports()?.len(),
            targeting: store.targeting()?,
        })
    })
    .await
}

async fn updates(State(s): State<ApiState>, Params(q): Params<dto::UpdatesQuery>) -> Answer {
    let approval = match given(q.approval).as_deref() {
        None => None,
        Some("approved") => Some(ApprovalState::Approved),
        Some("unapproved") => Some(ApprovalState::Unapproved),
        Some("declined") => Some(ApprovalState::Declined),
        Some("any-except-declined") => Some(ApprovalState::AnyExceptDeclined),
        Some(other) => {
            return Err(ApiError::refused(format!(
                "approval={other}: use approved, unapproved, declined or any-except-declined"
            )));
        }
    };
    let filter = UpdateFilter {
        text: given(q.search),
        classification: given(q.classification),
        product: given(q.product),
        approval,
        ..Default::default()
    };
    with_store(&s, move |store| Reply::ok(&store.list_updates(&filter)?)).await
}

async fn update(State(s): State<ApiState>, Segment(id): Segment) -> Answer {
    with_store(&s, move |store| {
        let revisions = store.resolve_update(&id)?;
        Reply::ok(&store.update_detail(revisions[0])?)
    })
    .await
}

async fn approve(State(s): State<ApiState>, JsonBody(r): JsonBody<dto::UpdateChange>) -> Answer {
    let action = Action::approvable(r.action.as_deref()).map_err(AdminError::from)?;
    with_store(&s, move |store| {
        let approved = AdminService::new(store).approve(&Approve {
            updates: &r.ids,
            group: r.group.as_deref().unwrap_or(ALL_COMPUTERS),
            action,
            deadline: r.deadline.as_deref(),
            admin: Some("api"),
            with_prerequisites: true,
        })?;
        Reply::ok(&dto::Approved {
            approved: approved.requested.len(),
            prerequisites: approved.prerequisites,
            group: approved.group.name,
            approvals: approved.approvals,
        })
    })
    .await
}

async fn unapprove(State(s): State<ApiState>, JsonBody(r): JsonBody<dto::UpdateChange>) -> Answer {
    with_store(&s, move |store| {
        let group = r.group.as_deref().unwrap_or(ALL_COMPUTERS);
        let (group, removed) = AdminService::new(store).unapprove(&r.ids, group)?;
        Reply::ok(&dto::Unapproved { removed, group: group.name })
    })
    .await
}

async fn decline(State(s): State<ApiState>, JsonBody(r): JsonBody<dto::UpdateChange>) -> Answer {
    with_store(&s, move |store| {
        let declined = AdminService::new(store).decline(&r.ids, Some("api"))?;
        Reply::ok(&dto::Declined { declined })
    })
    .await
}

async fn undecline(State(s): State<ApiState>, JsonBody(r): JsonBody<dto::UpdateChange>) -> Answer {
    with_store(&s, move |store| {
        let undeclined = AdminService::new(store).undecline(&r.ids)?;
        Reply::ok(&dto::Undeclined { undeclined })
    })
    .await
}

async fn groups(State(s): State<ApiState>) -> Answer {
    with_store(&s, |store| Reply::ok(&crate::admin::group_tree(store)?)).await
}

async fn create_group(State(s): State<ApiState>, JsonBody(r): JsonBody<dto::NewGroup>) -> Answer {
    with_store(&s, move |store| {
        Reply::created(&AdminService::new(store).create_group(&r.name, r.parent.as_deref())?)
    })
    .await
}

async fn move_group(
    State(s): State<ApiState>,
    Segment(name): Segment,
    JsonBody(r): JsonBody<dto::MoveGroup>,
) -> Answer {
    with_store(&s, move |store| Reply::ok(&AdminService::new(store).move_group(&name, &r.parent)?))
        .await
}

async fn remove_group(State(s): State<ApiState>, Segment(name): Segment) -> Answer {
    with_store(&s, move |store| Reply::ok(&AdminService::new(store).remove_group(&name)?)).await
}

async fn computers(State(s): State<ApiState>, Params(q): Params<dto::GroupQuery>) -> Answer {
    with_store(&s, move |store| {
        let group = given(q.group);
        let mut computers =
            crate::admin::computers_in_group(store, group.as_deref().unwrap_or(ALL_COMPUTERS))?;
        if let Some(name) = given(q.name) {
            let name = name.to_lowercase();
            computers.retain(|c| c.dns_name.to_lowercase().contains(&name));
        }
        Reply::ok(&computers)
    })
    .await
}

async fn move_computers(
    State(s): State<ApiState>,
    JsonBody(r): JsonBody<dto::MoveComputers>,
) -> Answer {
    with_store(&s, move |store| {
        let (group, moved) =
            AdminService::new(store).move_computers(&r.computers, &r.group, r.keep)?;
        Reply::ok(&dto::Moved { moved, group: group.name })
    })
    .await
}

async fn remove_computer(State(s): State<ApiState>, Segment(name): Segment) -> Answer {
    with_store(&s, move |store| {
        let removed = AdminService::new(store).remove_computers(&[name])?;
        Reply::ok(&dto::Removed { removed })
    })
    .await
}

async fn targeting(State(s): State<ApiState>) -> Answer {
    with_store(&s, |store| Reply::ok(&store.targeting()?)).await
}

async fn set_targeting(
    State(s): State<ApiState>,
    JsonBody(r): JsonBody<dto::TargetingChange>,
) -> Answer {
    with_store(&s, move |store| {
        let change = admin::TargetingChange {
            mode: r.mode.as_deref(),
            create_missing_groups: r.create_missing_groups,
            max_client_groups: r.max_client_groups,
        };
        Reply::ok(&AdminService::new(store).set_targeting(&change)?)
    })
    .await
}

/// Classifications or products (`kind`), by title.
async fn categories(State(s): State<ApiState>, kind: &'static str) -> Answer {
    with_store(&s, move |store| {
        let index = store.category_index()?;
        let mut list: Vec<dto::Category> = index
            .by_id
            .iter()
            .filter(|(_, (k, _))| k == kind)
            .map(|(id, (_, title))| dto::Category { id: id.clone(), title: title.clone() })
            .collect();
        list.sort_by_key(|c| c.title.as_deref().unwrap_or("").to_lowercase());
        Reply::ok(&list)
    })
    .await
}

async fn trust(State(s): State<ApiState>) -> Answer {
    with_store(&s, |store| Reply::ok(&store.trusted_keys()?)).await
}

async fn rules(State(s): State<ApiState>) -> Answer {
    with_store(&s, |store| Reply::ok(&store.approval_rules()?)).await
}

async fn add_rule(State(s): State<ApiState>, JsonBody(r): JsonBody<dto::NewRule>) -> Answer {
    let action = Action::approvable(r.action.as_deref()).map_err(AdminError::from)?;
    with_store(&s, move |store| {
        let rule = AdminService::new(store).add_rule(&admin::NewRuleRequest {
            name: r.name.as_deref(),
            classifications: &r.classifications,
            products: &r.products,
            group: &r.group,
            action,
            deadline_days: r.deadline_days,
        })?;
        Reply::created(&rule)
    })
    .await
}

async fn enable_rule(State(s): State<ApiState>, Segment(rule): Segment, on: bool) -> Answer {
    with_store(&s, move |store| Reply::ok(&AdminService::new(store).set_rule_enabled(&rule, on)?))
        .await
}

async fn remove_rule(State(s): State<ApiState>, Segment(rule): Segment) -> Answer {
    with_store(&s, move |store| Reply::ok(&AdminService::new(store).remove_rule(&rule)?)).await
}

async fn apply_rules(State(s): State<ApiState>) -> Answer {
    with_store(&s, |store| {
        let applied: dto::RulesApplied = AdminService::new(store).apply_approval_rules()?;
        Reply::ok(&applied)
    })
    .await
}

async fn report(State(s): State<ApiState>, Params(q): Params<dto::GroupQuery>) -> Answer {
    with_store(&s, move |store| {
        let group = given(q.group);
        let computers =
            crate::admin::computers_in_group(store, group.as_deref().unwrap_or(ALL_COMPUTERS))?;
        Reply::ok(&crate::admin::compliance_report(store, computers, group)?)
    })
    .await
}

async fn cleanup(State(s): State<ApiState>, JsonBody(r): JsonBody<dto::Cleanup>) -> Answer {
    with_store(&s, move |store| {
        let options = CleanupOptions {
            decline_superseded: r.decline_superseded,
            decline_expired: r.decline_expired,
            unneeded_content: r.unneeded_content,
            obsolete_computers_days: r.obsolete_computers,
        };
        let plan = AdminService::new(store).cleanup(&options, !r.dry_run)?;
        Reply::ok(&dto::CleanupDone { dry_run: r.dry_run, plan })
    })
    .await
}

async fn imports(State(s): State<ApiState>) -> Answer {
    with_store(&s, |store| Reply::ok(&store.imports()?)).await
}
