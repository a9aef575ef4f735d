//! Whole-definition checks: transition targets exist, every state is reachable, there is a
//! terminal state.

use std::collections::BTreeSet;

use crate::LoadError;
use crate::definition::{Definition, Kind, State, Transition};

/// Checks the state graph of a parsed definition.
pub(crate) fn validate(definition: &Definition) -> Result<(), LoadError> {
    let names: BTreeSet<&str> = definition.states.iter().map(|s| s.name.as_str()).collect();
    if !names.contains(definition.start_at.as_str()) {
        return Err(LoadError::new(
            None,
            "StartAt",
            format!(
                "\"{}\" is not a state of this definition",
                definition.start_at
            ),
        ));
    }
    for state in &definition.states {
        for (field, target) in targets(state) {
            if !names.contains(target) {
                return Err(LoadError::new(
                    Some(&state.name),
                    field,
                    format!("\"{target}\" is not a state of this definition"),
                ));
            }
        }
    }
    let mut reached = BTreeSet::from([definition.start_at.as_str()]);
    let mut pending = vec![definition.start_at.as_str()];
    while let Some(name) = pending.pop() {
        if let Some(state) = definition.state(name) {
            for (_, target) in targets(state) {
                if reached.insert(target) {
                    pending.push(target);
                }
            }
        }
    }
    if let Some(unreachable) = definition
        .states
        .iter()
        .find(|s| !reached.contains(s.name.as_str()))
    {
        return Err(LoadError::new(
            Some(&unreachable.name),
            "States",
            "the state is not reachable from StartAt",
        ));
    }
    if !definition.states.iter().any(is_terminal) {
        return Err(LoadError::new(
            None,
            "States",
            "the definition has no terminal state (End: true, Succeed or Fail)",
        ));
    }
    Ok(())
}

/// Every state name `state` can transition to, with the field that names it.
fn targets(state: &State) -> Vec<(String, &str)> {
    fn next(transition: &Transition) -> Vec<(String, &str)> {
        match transition {
            Transition::Next(next) => vec![("Next".to_owned(), next.as_str())],
            Transition::End => Vec::new(),
        }
    }
    match &state.kind {
        Kind::Task(task) => {
            let mut all = next(&task.transition);
            all.extend(
                task.catch.iter().enumerate().map(|(index, catcher)| {
                    (format!("Catch[{index}].Next"), catcher.next.as_str())
                }),
            );
            all
        }
        Kind::Pass { transition, .. } | Kind::Wait { transition, .. } => next(transition),
        Kind::Choice { choices, default } => {
            let mut all: Vec<_> = choices
                .iter()
                .enumerate()
                .map(|(index, rule)| (format!("Choices[{index}].Next"), rule.next.as_str()))
                .collect();
            all.extend(default.iter().map(|d| ("Default".to_owned(), d.as_str())));
            all
        }
        Kind::Succeed | Kind::Fail { .. } => Vec::new(),
    }
}

fn is_terminal(state: &State) -> bool {
    match &state.kind {
        Kind::Task(task) => task.transition == Transition::End,
        Kind::Pass { transition, .. } | Kind::Wait { transition, .. } => {
            *transition == Transition::End
        }
        Kind::Succeed | Kind::Fail { .. } => true,
        Kind::Choice { .. } => false,
    }
}
