//! `kiln inspect MODEL [--json]`: a model at a glance, from kiln-onnx's [`ModelSummary`].

use anyhow::Context;
use kiln_onnx::{Model, ModelSummary};

use crate::cli::{GlobalArgs, InspectArgs};

/// Runs `kiln inspect`.
pub fn run(args: &InspectArgs, global: &GlobalArgs) -> anyhow::Result<()> {
    let model = Model::open(&args.model)
        .with_context(|| format!("cannot inspect {}", args.model.display()))?;
    let summary = ModelSummary::of(&model);
    if global.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        println!("{}", args.model.display());
        print!("{summary}");
    }
    Ok(())
}
