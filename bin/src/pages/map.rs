//! `aedb pages map`: one character per page by type and fill, and the same as an SVG image.

use std::fmt::Write as _;
use std::path::Path;

use serde_json::{json, Value as Json};

use super::{finish, open_and_walk, report_problems};
use crate::cli::DbArgs;
use crate::util::{CliError, Ctx, Res};
use crate::walk::{PageInfo, Role, Walk};

/// The map's character for a page: its type; lower case for nodes less than half full.
fn cell_char(info: &PageInfo) -> char {
    if info.bad {
        return '!';
    }
    let half = info.fill >= 0.0 && info.fill < 0.5;
    match info.role {
        Role::Meta => 'M',
        Role::Branch if half => 'b',
        Role::Branch => 'B',
        Role::Leaf if half => 'l',
        Role::Leaf => 'L',
        Role::Overflow if half => 'o',
        Role::Overflow => 'O',
        Role::FreeList => 'F',
        Role::Free => '.',
        Role::Leaked => '?',
        Role::Tail => '_',
        Role::Unknown => ' ',
    }
}

/// A map cell for a terminal: the character in its type's colour, bold when at least three
/// quarters full, dim when less than a quarter.
fn ansi_cell(info: &PageInfo) -> String {
    let colour = if info.bad {
        "31;7"
    } else {
        match info.role {
            Role::Meta => "37",
            Role::Branch => "34",
            Role::Leaf => "32",
            Role::Overflow => "33",
            Role::FreeList => "35",
            Role::Free => "90",
            Role::Leaked => "31",
            Role::Tail | Role::Unknown => "90",
        }
    };
    let weight = match info.fill {
        f if f >= 0.75 => ";1",
        f if (0.0..0.25).contains(&f) => ";2",
        _ => "",
    };
    format!("\x1b[{colour}{weight}m{}\x1b[0m", cell_char(info))
}

const LEGEND: &str = "legend: M meta  B branch  L leaf  O overflow (lower case: under half full)  \
    F free-list page  . free  ? leaked  ! unreadable  _ past the page count";

fn colour(info: &PageInfo) -> &'static str {
    if info.bad {
        return "#000000";
    }
    match info.role {
        Role::Meta => "#6b7280",
        Role::Branch => "#2563eb",
        Role::Leaf => "#16a34a",
        Role::Overflow => "#ea580c",
        Role::FreeList => "#9333ea",
        Role::Free => "#e5e7eb",
        Role::Leaked => "#dc2626",
        Role::Tail => "#f9fafb",
        Role::Unknown => "#ffffff",
    }
}

fn svg(w: &Walk, width: usize) -> String {
    let cell = 12usize;
    let rows = w.pages.len().div_ceil(width).max(1);
    let legend_h = 40;
    let left = 60;
    let legend_w: usize = Role::ALL
        .iter()
        .map(|r| 13 + 8 * (r.name().len() + 2))
        .sum();
    let (pw, ph) = (
        (left + width * cell).max(left + legend_w) + 10,
        rows * cell + 20 + legend_h,
    );
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{pw}" height="{ph}" font-family="monospace" font-size="11">"#
    );
    let _ = writeln!(
        out,
        r#"<title>aedb page map: {} pages of {} bytes</title>"#,
        w.pages.len(),
        w.page_size
    );
    for row in 0..rows {
        let _ = writeln!(
            out,
            r##"<text x="{}" y="{}" text-anchor="end" font-size="9" fill="#6b7280">{}</text>"##,
            left - 6,
            10 + row * cell + cell - 3,
            row * width
        );
    }
    for (id, info) in w.pages.iter().enumerate() {
        let (x, y) = (left + (id % width) * cell, 10 + (id / width) * cell);
        let opacity = if info.fill >= 0.0 {
            0.25 + 0.75 * info.fill.clamp(0.0, 1.0)
        } else {
            1.0
        };
        let tree = w
            .tree_name(info)
            .map(|n| format!(" of {n} ({})", w.describe(n)))
            .unwrap_or_default();
        let fill = if info.fill >= 0.0 {
            format!(", {:.0}% full", info.fill * 100.0)
        } else {
            String::new()
        };
        let bad = if info.bad { " — UNREADABLE" } else { "" };
        let _ = writeln!(
            out,
            r#"<rect x="{x}" y="{y}" width="{}" height="{}" fill="{}" fill-opacity="{opacity:.2}" stroke="{}" stroke-width="{}"><title>page {id}: {}{}{}{}</title></rect>"#,
            cell - 1,
            cell - 1,
            colour(info),
            if info.bad { "#dc2626" } else { "#ffffff" },
            if info.bad { 2 } else { 0 },
            info.role.name(),
            xml_escape(&tree),
            fill,
            bad
        );
    }
    let legend_y = 10 + rows * cell + 14;
    let mut x = left;
    for role in Role::ALL {
        let info = PageInfo {
            role,
            tree: 0,
            fill: -1.0,
            bad: false,
        };
        let _ = writeln!(
            out,
            r##"<rect x="{x}" y="{}" width="10" height="10" fill="{}" stroke="#9ca3af"/><text x="{}" y="{legend_y}">{}</text>"##,
            legend_y - 9,
            colour(&info),
            x + 13,
            role.name()
        );
        x += 13 + 8 * (role.name().len() + 2);
    }
    let _ = writeln!(
        out,
        r#"<text x="{left}" y="{}">fill: more opaque = fuller; black with a red border: unreadable</text>"#,
        legend_y + 16
    );
    out.push_str("</svg>\n");
    out
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

pub fn map(ctx: &mut Ctx<'_>, db: &DbArgs, svg_path: Option<&Path>, width: u32) -> Res<i32> {
    let (df, w) = open_and_walk(ctx, db, "map")?;
    let width = width as usize;
    if let Some(path) = svg_path {
        let image = svg(&w, width);
        std::fs::write(path, image).map_err(|e| CliError::at(path, e))?;
    }
    let text: String = w.pages.iter().map(cell_char).collect();
    if ctx.json {
        ctx.print_json(&json!({
            "data_file": df.path.display().to_string(),
            "page_size": w.page_size,
            "pages": w.pages.len(),
            "map": text,
            "fill": w.pages.iter().map(|p| if p.fill >= 0.0 {
                json!((p.fill * 100.0).round() as u32)
            } else { Json::Null }).collect::<Vec<_>>(),
            "legend": LEGEND,
            "svg": svg_path.map(|p| p.display().to_string()),
            "problems": w.problems.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
        }))?;
    } else {
        ctx.line(format!(
            "{}: {} pages of {} bytes, {} per line",
            df.path.display(),
            w.pages.len(),
            w.page_size,
            width
        ))?;
        let colour = ctx.tty && std::env::var_os("NO_COLOR").is_none();
        let digits = (w.pages.len().max(1)).to_string().len();
        for (n, line) in w.pages.chunks(width).enumerate() {
            let mut row = String::new();
            for (i, group) in line.chunks(16).enumerate() {
                if i > 0 {
                    row.push(' ');
                }
                for info in group {
                    if colour {
                        row.push_str(&ansi_cell(info));
                    } else {
                        row.push(cell_char(info));
                    }
                }
            }
            ctx.line(format!("{:>digits$}  {}", n * width, row.trim_end()))?;
        }
        ctx.line(LEGEND)?;
        if let Some(path) = svg_path {
            ctx.line(format!("svg written to {}", path.display()))?;
        }
        report_problems(ctx, &w)?;
    }
    finish(ctx, &df.path, &w)
}
