//! `/admin`: sign-ins of the last 24 hours and 7 days by how they ended, the score
//! distribution, the top reasons and the review queue — charts drawn here as inline SVG (no
//! scripts, no CDN). The SVG holds only numbers and fixed labels, never user input.

use std::fmt::Write as _;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use tera::Context;

use super::{gate, render};
use crate::flow::reports::{self, Split};
use crate::web::errors::WebError;
use crate::web::AppState;

/// Colours per series: allowed, stepped up, blocked, failed.
const SERIES: [(&str, &str); 4] = [
    ("allowed", "#2f855a"),
    ("stepped up", "#b7791f"),
    ("blocked", "#c53030"),
    ("failed", "#718096"),
];

/// A stacked bar chart of `buckets`, labelled every `label_every` bars with `label(i)`.
pub fn stacked_bars(
    title: &str,
    buckets: &[Split],
    label_every: usize,
    label: impl Fn(usize) -> String,
) -> String {
    let (w, h, pad_l, pad_b, pad_t) = (640.0, 200.0, 36.0, 22.0, 8.0);
    let max = buckets.iter().map(Split::total).max().unwrap_or(0).max(1) as f64;
    let n = buckets.len().max(1) as f64;
    let slot = (w - pad_l) / n;
    let bar = (slot * 0.7).max(1.0);
    let plot_h = h - pad_b - pad_t;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="chart" viewBox="0 0 {w} {h}" role="img" aria-label="{title}"><title>{title}</title>"#
    );
    let _ = write!(
        s,
        r#"<text x="{x}" y="{y}" text-anchor="end">{max}</text><text x="{x}" y="{y0}" text-anchor="end">0</text>"#,
        x = pad_l - 4.0,
        y = pad_t + 10.0,
        y0 = h - pad_b,
        max = max as u64
    );
    for (i, b) in buckets.iter().enumerate() {
        let x = pad_l + i as f64 * slot + (slot - bar) / 2.0;
        let mut y = h - pad_b;
        for (k, v) in [b.allowed, b.stepped_up, b.blocked, b.failed]
            .iter()
            .enumerate()
        {
            if *v == 0 {
                continue;
            }
            let bh = *v as f64 / max * plot_h;
            y -= bh;
            let _ = write!(
                s,
                r#"<rect x="{x:.1}" y="{y:.1}" width="{bar:.1}" height="{bh:.1}" fill="{c}"><title>{v} {name}</title></rect>"#,
                c = SERIES[k].1,
                name = SERIES[k].0
            );
        }
        if label_every > 0 && i % label_every == 0 {
            let _ = write!(
                s,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
                x + bar / 2.0,
                h - 6.0,
                label(i)
            );
        }
    }
    s.push_str("</svg>");
    s
}

/// A histogram of the ten score buckets.
pub fn histogram(counts: &[u64; 10]) -> String {
    let (w, h, pad_l, pad_b) = (640.0, 160.0, 36.0, 22.0);
    let max = counts.iter().copied().max().unwrap_or(0).max(1) as f64;
    let slot = (w - pad_l) / 10.0;
    let mut s = format!(
        r#"<svg class="chart" viewBox="0 0 {w} {h}" role="img" aria-label="Risk score distribution"><title>Risk score distribution</title>"#
    );
    for (i, c) in counts.iter().enumerate() {
        let bh = *c as f64 / max * (h - pad_b - 8.0);
        let x = pad_l + i as f64 * slot + slot * 0.1;
        let colour = match i {
            0..=3 => "#2f855a",
            4..=6 => "#b7791f",
            _ => "#c53030",
        };
        let _ = write!(
            s,
            r#"<rect x="{x:.1}" y="{:.1}" width="{:.1}" height="{bh:.1}" fill="{colour}"><title>{c} sign-ins scored {}–{}</title></rect><text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            h - pad_b - bh,
            slot * 0.8,
            i * 10,
            i * 10 + 9,
            x + slot * 0.4,
            h - 6.0,
            i * 10
        );
    }
    s.push_str("</svg>");
    s
}

pub async fn show(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, WebError> {
    let admin = or_respond!(gate(&state, &req, "/admin").await?);
    let now = state.now();
    let d = reports::dashboard(&state.svc, now).await?;
    let mut ctx = Context::new();
    ctx.insert(
        "chart_24h",
        &stacked_bars("Sign-ins per hour, last 24 hours", &d.hours, 3, |i| {
            format!("-{}h", 24 - i)
        }),
    );
    ctx.insert(
        "chart_7d",
        &stacked_bars("Sign-ins per day, last 7 days", &d.days, 1, |i| {
            format!("-{}d", 7 - i)
        }),
    );
    ctx.insert("chart_scores", &histogram(&d.score_histogram));
    ctx.insert(
        "legend",
        &SERIES
            .iter()
            .map(|(n, c)| serde_json::json!({"name": n, "colour": c}))
            .collect::<Vec<_>>(),
    );
    ctx.insert("d", &d);
    render(
        &state,
        &req,
        &admin,
        StatusCode::OK,
        "admin/dashboard.html",
        "dashboard",
        ctx,
    )
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin", web::get().to(show))
        .route("/admin/", web::get().to(show));
}
