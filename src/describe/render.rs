//! Descriptions for people (text) and scripts (JSON). Every text in a
//! description comes from the broker, so control characters are replaced
//! before anything reaches a terminal (no escape sequences from a forger).

use std::fmt::Write;

use serde_json::{json, Value};

use super::{Catalog, Offer, Variant};
use crate::output::Columns;
use crate::protocol::OpDescription;

/// What a listing says for an operation no server describes.
const UNDESCRIBED: &str = "(no description)";

/// `text` with control characters (escape sequences, newlines) replaced
/// by `?`.
pub fn clean(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

fn joined(items: &[String]) -> String {
    clean(&items.join(", "))
}

/// The operations as an aligned table: name, summary, servers.
pub fn list(catalog: &Catalog) -> String {
    let rows: Vec<[String; 3]> = catalog
        .offers
        .iter()
        .map(|o| [clean(&o.name), summary(o), joined(&o.servers())])
        .collect();
    if rows.is_empty() {
        return String::new();
    }
    Columns::table(&["OP", "SUMMARY", "SERVERS"], &rows)
}

fn summary(offer: &Offer) -> String {
    match offer.summary() {
        "" if offer.variants.is_empty() => UNDESCRIBED.to_string(),
        text => clean(text),
    }
}

/// The listing as JSON: `[{"name", "summary", "servers"}]`.
pub fn list_json(catalog: &Catalog) -> Value {
    catalog
        .offers
        .iter()
        .map(|o| json!({"name": o.name, "summary": o.summary(), "servers": o.servers()}))
        .collect()
}

/// One operation in full: each distinct description with the servers
/// publishing it, then the servers that publish none.
pub fn one(offer: &Offer) -> String {
    let mut out = String::new();
    for (i, variant) in offer.variants.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&describe(variant));
    }
    if !offer.undescribed.is_empty() {
        if !out.is_empty() {
            out.push('\n');
        }
        let _ = writeln!(
            out,
            "{}: offered by {}, which publish no description (older servers, or an ACL that refuses it); `mqttapp ask {} --help` shows the flags",
            clean(&offer.name),
            joined(&offer.undescribed),
            clean(&offer.name),
        );
    }
    out
}

fn describe(variant: &Variant) -> String {
    let d = &variant.description;
    let mut out = format!("{}: {}\n", clean(&d.name), clean(&d.summary));
    let _ = writeln!(out, "offered by: {}", joined(&variant.servers));
    if !d.encodings.is_empty() {
        let _ = writeln!(out, "encodings: {}", joined(&d.encodings));
    }
    if !d.input.is_empty() {
        let _ = writeln!(out, "request: {}", clean(&d.input));
    }
    fields(&mut out, d);
    if !d.reply.is_empty() {
        let _ = writeln!(out, "reply: {}", clean(&d.reply));
    }
    if !d.limits.is_empty() {
        let rows: Vec<[String; 2]> = d
            .limits
            .iter()
            .map(|l| [clean(&l.name), clean(&format!("{} {}", l.value, l.unit))])
            .collect();
        section(&mut out, "limits", &rows);
    }
    if !d.examples.is_empty() {
        out.push_str("examples:\n");
        for e in &d.examples {
            let _ = writeln!(out, "  {}  ->  {}", clean(&e.input), clean(&e.output));
        }
    }
    if !d.codes.is_empty() {
        let _ = writeln!(out, "error codes: {}", joined(&d.codes));
    }
    out
}

fn fields(out: &mut String, d: &OpDescription) {
    if d.fields.is_empty() {
        return;
    }
    let rows: Vec<[String; 3]> = d
        .fields
        .iter()
        .map(|f| {
            let need = if f.required { "required" } else { "optional" };
            let mut what = clean(&f.summary);
            if !f.allowed.is_empty() {
                let _ = write!(what, "; one of: {}", joined(&f.allowed));
            }
            [clean(&f.name), format!("{}, {need}", clean(&f.ty)), what]
        })
        .collect();
    section(out, "fields", &rows);
}

/// A heading and indented, aligned rows (no header line).
fn section<const N: usize>(out: &mut String, heading: &str, rows: &[[String; N]]) {
    let _ = writeln!(out, "{heading}:");
    let mut columns = Columns::new(&[""; N]);
    rows.iter().for_each(|r| columns.fit(r));
    for row in rows {
        let _ = write!(out, "  {}", columns.line(row));
    }
}

/// One operation as JSON: the most common description's fields plus
/// `servers`; `others` (other descriptions, each with its `servers`) and
/// `undescribed` (servers publishing none) when there are any.
pub fn one_json(offer: &Offer) -> Value {
    let variant_json = |v: &Variant| {
        let mut value = serde_json::to_value(&v.description).unwrap_or(Value::Null);
        value["servers"] = json!(v.servers);
        value
    };
    let mut value = match offer.variants.first() {
        Some(first) => variant_json(first),
        None => json!({"name": offer.name, "servers": []}),
    };
    if offer.variants.len() > 1 {
        value["others"] = offer.variants[1..].iter().map(variant_json).collect();
    }
    if !offer.undescribed.is_empty() {
        value["undescribed"] = json!(offer.undescribed);
    }
    value
}

#[cfg(test)]
mod tests;
