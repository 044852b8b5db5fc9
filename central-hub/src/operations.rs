//! What operators do to work orders: move them through their life, assign
//! crews, schedule inspections, and let the scheduler plan the rest.
//!
//! Each operation checks everything before it writes anything, then commits
//! the work order and its audit entry together: a refused request changes
//! nothing, and an accepted one is always in the trail. This is part of the
//! ledger (a child module) because it shares the ledger's writer lock with
//! ingest.

use thiserror::Error;

use super::Ledger;
use crate::audit::{Actor, AuditAction};
use crate::scheduler::{self, Booking, Crew, Day, Job, Plan};
use crate::work_orders::{WorkOrder, WorkOrderStatus, required_skill};
use store::{StoreError, Write, get_json, put_json};

/// Longest note, reason or findings text accepted.
pub const MAX_TEXT: usize = 4000;

/// How far ahead the scheduler looks.
pub const PLAN_HORIZON_DAYS: u32 = 60;

#[derive(Debug, Error)]
pub enum OperationError {
    #[error("no work order `{0}`")]
    NotFound(String),
    /// Not allowed from the work order's state (HTTP 409).
    #[error("work order {id} is {from}: it cannot become {to}")]
    InvalidTransition {
        id: String,
        from: &'static str,
        to: &'static str,
    },
    /// The request itself is incomplete or impossible (HTTP 422).
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// An operator's request to move a work order.
#[derive(Debug, Clone, Default)]
pub struct TransitionRequest {
    pub to: Option<WorkOrderStatus>,
    pub note: Option<String>,
    /// Required to dismiss.
    pub reason: Option<String>,
    /// Required to close as done.
    pub findings: Option<String>,
}

fn text(what: &str, v: Option<String>) -> Result<Option<String>, OperationError> {
    match v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()) {
        Some(s) if s.chars().count() > MAX_TEXT => Err(OperationError::Invalid(format!(
            "{what} is longer than {MAX_TEXT} characters"
        ))),
        v => Ok(v),
    }
}

impl Ledger {
    fn existing(&self, id: &str) -> Result<WorkOrder, OperationError> {
        self.work_order(id)?
            .ok_or_else(|| OperationError::NotFound(id.to_owned()))
    }

    fn check_transition(wo: &WorkOrder, to: WorkOrderStatus) -> Result<(), OperationError> {
        if wo.status.can_become(to) {
            Ok(())
        } else {
            Err(OperationError::InvalidTransition {
                id: wo.id.clone(),
                from: wo.status.as_str(),
                to: to.as_str(),
            })
        }
    }

    /// Writes `wo` with one audit entry.
    #[allow(clippy::too_many_arguments)]
    fn commit_change(
        &self,
        mut wo: WorkOrder,
        who: &Actor,
        action: AuditAction,
        from: WorkOrderStatus,
        note: Option<String>,
        now_ms: u64,
        mut writes: Vec<Write>,
    ) -> Result<WorkOrder, OperationError> {
        wo.updated_at_ms = now_ms;
        if !wo.status.is_open() {
            wo.closed_at_ms = Some(now_ms);
            let index = WorkOrder::open_key(&wo.site, &wo.asset_id, wo.kind);
            if get_json::<String>(&*self.store, &index)?.as_deref() == Some(wo.id.as_str()) {
                writes.push(Write::Delete(index));
            }
        }
        let mut audit = self.audit_log(&writes)?;
        audit.record(
            who,
            &wo.id,
            action,
            Some(from),
            Some(wo.status),
            note,
            now_ms,
            &mut writes,
        );
        audit.finish(&mut writes);
        writes.push(put_json(WorkOrder::key(&wo.id), &wo));
        self.store.commit(writes)?;
        tracing::info!(work_order = %wo.id, who = %who.name, from = from.as_str(), to = wo.status.as_str(), "work order changed");
        Ok(wo)
    }

    /// Moves a work order to another state (not `scheduled`: that is
    /// [`Ledger::schedule`]).
    pub fn transition(
        &self,
        id: &str,
        req: TransitionRequest,
        who: &Actor,
        now_ms: u64,
    ) -> Result<WorkOrder, OperationError> {
        let _writer = self.write_lock();
        let mut wo = self.existing(id)?;
        let to = req
            .to
            .ok_or_else(|| OperationError::Invalid("`to` (the new status) is required".into()))?;
        if to == WorkOrderStatus::Scheduled {
            return Err(OperationError::Invalid(
                "a work order is scheduled with a crew and a day: POST /api/work-orders/{id}/schedule".into(),
            ));
        }
        Self::check_transition(&wo, to)?;
        let note = text("note", req.note)?;
        let reason = text("reason", req.reason)?;
        let findings = text("findings", req.findings)?;
        match to {
            WorkOrderStatus::Dismissed => {
                let reason = reason.ok_or_else(|| {
                    OperationError::Invalid(
                        "dismissing needs a `reason` (it is kept as feedback for model tuning)"
                            .into(),
                    )
                })?;
                wo.dismissal_reason = Some(reason);
            }
            WorkOrderStatus::Done => {
                let findings = findings.ok_or_else(|| {
                    OperationError::Invalid(
                        "closing as done needs the inspection's `findings`".into(),
                    )
                })?;
                wo.findings = Some(findings);
            }
            WorkOrderStatus::Acknowledged => wo.scheduled_day = None,
            _ => {}
        }
        let from = wo.status;
        wo.status = to;
        let note = note.or_else(|| {
            wo.dismissal_reason
                .clone()
                .filter(|_| to == WorkOrderStatus::Dismissed)
        });
        self.commit_change(
            wo,
            who,
            AuditAction::Transition,
            from,
            note,
            now_ms,
            Vec::new(),
        )
    }

    /// Assigns a crew (the state does not change).
    pub fn assign(
        &self,
        id: &str,
        crew: &Crew,
        who: &Actor,
        now_ms: u64,
    ) -> Result<WorkOrder, OperationError> {
        let _writer = self.write_lock();
        let mut wo = self.existing(id)?;
        if !wo.status.is_open() {
            return Err(OperationError::Invalid(format!(
                "work order {id} is {}: nothing to assign",
                wo.status.as_str()
            )));
        }
        Self::check_skill(&wo, crew)?;
        let from = wo.status;
        wo.crew = Some(crew.id.clone());
        let note = Some(format!("crew {}", crew.id));
        self.commit_change(
            wo,
            who,
            AuditAction::Assigned,
            from,
            note,
            now_ms,
            Vec::new(),
        )
    }

    fn check_skill(wo: &WorkOrder, crew: &Crew) -> Result<(), OperationError> {
        let skill = required_skill(wo.kind, wo.asset_kind);
        if crew.has_skill(skill) {
            Ok(())
        } else {
            Err(OperationError::Invalid(format!(
                "crew {} has no `{skill}` skill, which work order {} needs",
                crew.id, wo.id
            )))
        }
    }

    /// Every inspection on the schedule (scheduled or in progress, with a
    /// day), with its work order.
    pub fn scheduled(&self) -> Result<Vec<(Booking, WorkOrder)>, StoreError> {
        Ok(self
            .work_orders()?
            .into_iter()
            .filter(|w| {
                matches!(
                    w.status,
                    WorkOrderStatus::Scheduled | WorkOrderStatus::InProgress
                )
            })
            .filter_map(|w| {
                let booking = Booking {
                    work_order: w.id.clone(),
                    crew: w.crew.clone()?,
                    day: w.scheduled_day?,
                    site: w.site.clone(),
                };
                Some((booking, w))
            })
            .collect())
    }

    /// Schedules a work order's inspection to a crew on a day.
    pub fn schedule(
        &self,
        id: &str,
        crew: &Crew,
        day: Day,
        who: &Actor,
        now_ms: u64,
    ) -> Result<WorkOrder, OperationError> {
        let _writer = self.write_lock();
        let mut wo = self.existing(id)?;
        Self::check_transition(&wo, WorkOrderStatus::Scheduled)?;
        Self::check_skill(&wo, crew)?;
        if day < Day::from_ms(now_ms) {
            return Err(OperationError::Invalid(format!("{day} is in the past")));
        }
        let bookings: Vec<Booking> = self
            .scheduled()?
            .into_iter()
            .map(|(b, _)| b)
            .filter(|b| b.work_order != wo.id)
            .collect();
        scheduler::check_slot(crew, day, &bookings).map_err(OperationError::Invalid)?;
        let from = wo.status;
        wo.status = WorkOrderStatus::Scheduled;
        wo.crew = Some(crew.id.clone());
        wo.scheduled_day = Some(day);
        let note = Some(format!("crew {} on {day}", crew.id));
        self.commit_change(
            wo,
            who,
            AuditAction::Scheduled,
            from,
            note,
            now_ms,
            Vec::new(),
        )
    }

    /// Lets the scheduler place every open or acknowledged work order
    /// without a day, from today, and schedules what it placed (one commit).
    pub fn plan_schedule(
        &self,
        crews: &[Crew],
        who: &Actor,
        now_ms: u64,
    ) -> Result<Plan, OperationError> {
        let _writer = self.write_lock();
        let bookings: Vec<Booking> = self.scheduled()?.into_iter().map(|(b, _)| b).collect();
        let waiting: Vec<WorkOrder> = self
            .work_orders()?
            .into_iter()
            .filter(|w| {
                matches!(
                    w.status,
                    WorkOrderStatus::Open | WorkOrderStatus::Acknowledged
                ) && w.scheduled_day.is_none()
            })
            .collect();
        let jobs: Vec<Job> = waiting
            .iter()
            .map(|w| Job {
                work_order: w.id.clone(),
                site: w.site.clone(),
                skill: required_skill(w.kind, w.asset_kind).to_owned(),
                priority: w.priority,
                due: Day::from_ms(w.due_at_ms),
                created_at_ms: w.created_at_ms,
            })
            .collect();
        let plan = scheduler::plan(
            crews,
            &bookings,
            &jobs,
            Day::from_ms(now_ms),
            PLAN_HORIZON_DAYS,
        );
        let mut writes = Vec::new();
        let mut audit = self.audit_log(&writes)?;
        for placed in &plan.planned {
            let Some(mut wo) = waiting.iter().find(|w| w.id == placed.work_order).cloned() else {
                continue;
            };
            let from = wo.status;
            wo.status = WorkOrderStatus::Scheduled;
            wo.crew = Some(placed.crew.clone());
            wo.scheduled_day = Some(placed.day);
            wo.updated_at_ms = now_ms;
            let late = if placed.late {
                ", after its due day"
            } else {
                ""
            };
            audit.record(
                who,
                &wo.id,
                AuditAction::Scheduled,
                Some(from),
                Some(WorkOrderStatus::Scheduled),
                Some(format!(
                    "planned: crew {} on {}{late}",
                    placed.crew, placed.day
                )),
                now_ms,
                &mut writes,
            );
            writes.push(put_json(WorkOrder::key(&wo.id), &wo));
        }
        if !plan.planned.is_empty() {
            audit.finish(&mut writes);
            self.store.commit(writes)?;
        }
        tracing::info!(who = %who.name, planned = plan.planned.len(), late = plan.late.len(), "schedule planned");
        Ok(plan)
    }
}
