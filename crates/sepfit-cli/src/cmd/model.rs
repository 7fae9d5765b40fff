//! `sepfit model`: what sepfit sees in a formula.

use super::{CliError, emit, formula_error};
use crate::cli::{Format, ModelArgs};
use sepfit_expr::{ExprId, ModelFormula};
use serde_json::{Map, Value, json};

pub fn run(args: &ModelArgs) -> Result<(), CliError> {
    let columns: Vec<String> = match &args.data {
        Some(path) => {
            let names = read_header(path)?;
            crate::data::columns_in_formula(&names, &args.formula, None).into_iter().map(|i| names[i].clone()).collect()
        }
        None => args.columns.iter().map(|c| c.trim().to_string()).filter(|c| !c.is_empty()).collect(),
    };
    let cols: Vec<&str> = columns.iter().map(String::as_str).collect();
    let m = ModelFormula::parse(&args.formula, &cols).map_err(|d| formula_error(&args.formula, d))?;
    let show = |id: ExprId| if args.latex { m.latex(id) } else { m.print(id) };
    match args.format {
        Format::Json => emit(&format!("{}\n", serde_json::to_string_pretty(&to_json(&m, &show))?)),
        Format::Text => emit(&to_text(&m, &show, args.latex)),
    }
}

/// The header of `--data`, read like every data file (BOM, comments, quoting; see `data.rs`).
fn read_header(path: &std::path::Path) -> anyhow::Result<Vec<String>> {
    crate::data::read_header(path)
}

pub fn to_json(m: &ModelFormula, show: &dyn Fn(ExprId) -> String) -> Value {
    let nl: Vec<&str> = m.nonlinear_params().map(|p| p.name.as_str()).collect();
    let params: Vec<Value> = m.params().iter().map(|p| json!({"name": p.name, "linear": p.linear})).collect();
    let basis: Vec<String> = m.basis().iter().map(|&b| show(b)).collect();
    let mut derivs = Map::new();
    for (k, name) in nl.iter().enumerate() {
        let mut col = vec!["0".to_string(); m.basis().len()];
        for &(j, kk, d) in m.basis_derivatives() {
            if kk == k {
                col[j] = show(d);
            }
        }
        derivs.insert(name.to_string(), json!(col));
    }
    let mut off_derivs = Map::new();
    for &(k, d) in m.offset_derivatives() {
        off_derivs.insert(nl[k].to_string(), json!(show(d)));
    }
    let mut grad = Map::new();
    for (p, &g) in m.params().iter().zip(m.gradient()) {
        grad.insert(p.name.clone(), json!(show(g)));
    }
    json!({
        "formula": m.source(),
        "response": show(m.lhs()),
        "model": show(m.rhs()),
        "parameters": params,
        "basis": basis,
        "offset": m.offset().map(show),
        "derivatives": derivs,
        "offset_derivatives": off_derivs,
        "gradient": grad,
        "notes": m.notes(),
    })
}

fn to_text(m: &ModelFormula, show: &dyn Fn(ExprId) -> String, latex: bool) -> String {
    let mut s = String::new();
    let phi = |j: usize| if latex { format!("\\phi_{{{}}}", j + 1) } else { format!("φ{}", j + 1) };
    let d = if latex { "\\partial " } else { "∂" };
    s += &format!("formula    {}\n", m.source());
    s += &format!("response   {}\n", show(m.lhs()));
    let lin: Vec<_> = m.linear_params().collect();
    let nl: Vec<_> = m.nonlinear_params().collect();
    let mut terms: Vec<String> = lin.iter().enumerate().map(|(j, p)| format!("{}·{}", p.name, phi(j))).collect();
    if m.offset().is_some() {
        terms.push(if latex { "\\phi_{0}".into() } else { "φ0".into() });
    }
    if terms.is_empty() {
        terms.push("0".into());
    }
    s += &format!("structure  {} = {}\n\n", show(m.lhs()), terms.join(" + "));
    s += &format!(
        "linear parameters ({}, eliminated by variable projection; no starting values needed):\n",
        lin.len()
    );
    for (j, p) in lin.iter().enumerate() {
        s += &format!("  {:<10} {} = {}\n", p.name, phi(j), show(m.basis()[j]));
    }
    if let Some(o) = m.offset() {
        s += &format!("term without a linear parameter:\n  {} = {}\n", if latex { "\\phi_{0}" } else { "φ0" }, show(o));
    }
    s += &format!("nonlinear parameters ({}, need starting values):", nl.len());
    if nl.is_empty() {
        s += " none: the model is linear in all its parameters\n";
    } else {
        s += &format!(" {}\n", nl.iter().map(|p| p.name.as_str()).collect::<Vec<_>>().join(", "));
    }
    if !m.basis_derivatives().is_empty() || !m.offset_derivatives().is_empty() {
        s += "\nexact derivatives of the basis functions:\n";
        for &(j, k, e) in m.basis_derivatives() {
            s += &format!("  {d}{}/{d}{} = {}\n", phi(j), nl[k].name, show(e));
        }
        for &(k, e) in m.offset_derivatives() {
            s += &format!("  {d}{}/{d}{} = {}\n", if latex { "\\phi_{0}" } else { "φ0" }, nl[k].name, show(e));
        }
    }
    s += "\npartial derivatives of the model f:\n";
    for (p, &g) in m.params().iter().zip(m.gradient()) {
        s += &format!("  {d}f/{d}{} = {}\n", p.name, show(g));
    }
    for n in m.notes() {
        s += &format!("\nnote: {n}\n");
    }
    s
}
