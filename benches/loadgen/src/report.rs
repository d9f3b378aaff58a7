//! The side-by-side table: medians over the rounds, their spread, and the ratio of the first
//! server to the second; as aligned text or as a Markdown table.

use crate::scenarios::{Better, Figure, Outcome, Scenario, Unit};
use crate::stats::{fmt_num, fmt_rate, median, spread_pct};

/// The result of one run: figures, a skip, or a failure.
pub(crate) type RunResult = Result<Outcome, String>;

/// Every run of one scenario, per server.
#[derive(Debug)]
pub(crate) struct ScenarioRuns {
    pub(crate) scenario: &'static Scenario,
    /// `runs[side]` holds one entry per round.
    pub(crate) runs: Vec<Vec<RunResult>>,
}

/// One line of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Row {
    pub(crate) scenario: String,
    pub(crate) figure: String,
    /// Median and spread per server.
    pub(crate) cells: Vec<(String, String)>,
    pub(crate) ratio: String,
}

fn format(unit: Unit, v: f64) -> String {
    match unit {
        Unit::Rate => fmt_rate(v),
        Unit::Num => fmt_num(v),
    }
}

fn measured(runs: &[RunResult]) -> impl Iterator<Item = &Vec<Figure>> {
    runs.iter().filter_map(|r| match r {
        Ok(Outcome::Measured(figures)) => Some(figures),
        _ => None,
    })
}

/// The rows of one scenario.
pub(crate) fn rows(result: &ScenarioRuns) -> Vec<Row> {
    let sides = result.runs.len();
    let mut rows = Vec::new();
    let title = result.scenario.title.to_owned();
    let template = result.runs.iter().find_map(|runs| measured(runs).next());
    match template {
        None => {
            let why = result
                .runs
                .iter()
                .flatten()
                .find_map(|r| r.as_ref().err().map(|e| format!("FAILED: {e}")))
                .or_else(|| {
                    result.runs.iter().flatten().find_map(|r| match r {
                        Ok(Outcome::Skipped(why)) => Some(format!("skipped: {why}")),
                        _ => None,
                    })
                })
                .unwrap_or_else(|| "no runs".to_owned());
            rows.push(Row {
                scenario: title.clone(),
                figure: why,
                cells: vec![(String::new(), String::new()); sides],
                ratio: String::new(),
            });
        }
        Some(template) => {
            for figure in template {
                let medians: Vec<Option<f64>> = result
                    .runs
                    .iter()
                    .map(|runs| median(&values(runs, figure.label)))
                    .collect();
                let cells = result
                    .runs
                    .iter()
                    .zip(&medians)
                    .map(|(runs, m)| match m {
                        None => ("-".to_owned(), String::new()),
                        Some(m) => {
                            let values = values(runs, figure.label);
                            // One round has no spread to show.
                            let spread = spread_pct(&values)
                                .filter(|_| values.len() > 1)
                                .map(|s| format!("±{s:.0}%"))
                                .unwrap_or_default();
                            (format(figure.unit, *m), spread)
                        }
                    })
                    .collect();
                let ratio = match (medians.as_slice(), figure.better) {
                    (_, Better::Neither) => String::new(),
                    ([Some(a), Some(b)], better) if *b != 0.0 => {
                        let r = a / b;
                        if better == Better::Lower {
                            format!("{r:.2} (lower is better)")
                        } else {
                            format!("{r:.2}")
                        }
                    }
                    _ => String::new(),
                };
                rows.push(Row {
                    scenario: if rows.is_empty() {
                        title.clone()
                    } else {
                        String::new()
                    },
                    figure: figure.label.to_owned(),
                    cells,
                    ratio,
                });
            }
        }
    }
    for (side, runs) in result.runs.iter().enumerate() {
        let failures: Vec<&String> = runs.iter().filter_map(|r| r.as_ref().err()).collect();
        if template.is_some() && !failures.is_empty() {
            rows.push(Row {
                scenario: String::new(),
                figure: format!(
                    "FAILED {} of {} run(s) of server {}: {}",
                    failures.len(),
                    runs.len(),
                    side_name(side),
                    failures[0]
                ),
                cells: vec![(String::new(), String::new()); sides],
                ratio: String::new(),
            });
        }
    }
    rows
}

fn values(runs: &[RunResult], label: &str) -> Vec<f64> {
    measured(runs)
        .filter_map(|figures| figures.iter().find(|f| f.label == label))
        .map(|f| f.value)
        .collect()
}

fn side_name(side: usize) -> char {
    if side == 0 { 'A' } else { 'B' }
}

/// The table as aligned text, `A` and `B` standing for the servers.
pub(crate) fn text(rows: &[Row], sides: usize) -> String {
    let mut header = vec!["scenario".to_owned(), "figure".to_owned()];
    for side in 0..sides {
        let s = side_name(side);
        header.push(format!("{s} median"));
        header.push(format!("{s} spread"));
    }
    if sides == 2 {
        header.push("A/B".to_owned());
    }
    let lines: Vec<Vec<String>> = std::iter::once(header)
        .chain(rows.iter().map(|row| {
            let mut line = vec![row.scenario.clone(), row.figure.clone()];
            for (m, s) in &row.cells {
                line.push(m.clone());
                line.push(s.clone());
            }
            if sides == 2 {
                line.push(row.ratio.clone());
            }
            line
        }))
        .collect();
    let columns = lines.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            lines
                .iter()
                // A failure note spans the row; it does not widen the column.
                .filter(|l| l.get(2).is_some_and(|v| !v.is_empty()) || c != 1)
                .map(|l| l.get(c).map_or(0, |v| v.chars().count()))
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for (i, line) in lines.iter().enumerate() {
        let mut text = String::new();
        for (c, cell) in line.iter().enumerate() {
            let width = widths.get(c).copied().unwrap_or(0);
            text.push_str(cell);
            let pad = width.saturating_sub(cell.chars().count());
            text.push_str(&" ".repeat(pad + 2));
        }
        out.push_str(text.trim_end());
        out.push('\n');
        if i == 0 {
            let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
            out.push_str(&rule.join("  "));
            out.push('\n');
        }
    }
    out
}

/// The table in Markdown, with the servers' names as column heads.
pub(crate) fn markdown(rows: &[Row], names: &[String]) -> String {
    let mut head = vec!["scenario".to_owned(), "figure".to_owned()];
    for name in names {
        head.push(name.clone());
        head.push("spread".to_owned());
    }
    if let [a, b] = names {
        head.push(format!("{a} / {b}"));
    }
    let mut out = format!("| {} |\n", head.join(" | "));
    out.push_str(&format!("|{}\n", " --- |".repeat(head.len())));
    for row in rows {
        let mut cells = vec![row.scenario.clone(), row.figure.clone()];
        for (m, s) in &row.cells {
            cells.push(m.clone());
            cells.push(s.clone());
        }
        if names.len() == 2 {
            cells.push(row.ratio.clone());
        }
        let cells: Vec<String> = cells.iter().map(|c| c.replace('|', "\\|")).collect();
        out.push_str(&format!("| {} |\n", cells.join(" | ")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenarios::ALL;

    fn measured_run(rate: f64, cpu: f64) -> RunResult {
        Ok(Outcome::Measured(vec![
            Figure {
                label: "delivered msgs/s",
                value: rate,
                better: Better::Higher,
                unit: Unit::Rate,
            },
            Figure {
                label: "server CPU ns/msg",
                value: cpu,
                better: Better::Lower,
                unit: Unit::Num,
            },
        ]))
    }

    #[test]
    fn medians_spreads_and_ratios() {
        let result = ScenarioRuns {
            scenario: &ALL[0],
            runs: vec![
                vec![
                    measured_run(3.0e6, 300.0),
                    measured_run(2.0e6, 320.0),
                    measured_run(2.5e6, 310.0),
                ],
                vec![
                    measured_run(1.0e6, 900.0),
                    measured_run(1.0e6, 1000.0),
                    Err("lost".to_owned()),
                ],
            ],
        };
        let rows = rows(&result);
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].scenario, ALL[0].title);
        assert_eq!(rows[0].cells[0], ("2.500M".to_owned(), "±20%".to_owned()));
        assert_eq!(rows[0].cells[1], ("1.000M".to_owned(), "±0%".to_owned()));
        assert_eq!(rows[0].ratio, "2.50");
        assert_eq!(rows[1].scenario, "");
        assert_eq!(rows[1].cells[1].0, "950");
        assert_eq!(rows[1].ratio, "0.33 (lower is better)");
        assert!(
            rows[2]
                .figure
                .starts_with("FAILED 1 of 3 run(s) of server B: lost")
        );
        let text = text(&rows, 2);
        assert!(text.starts_with("scenario"), "{text}");
        assert!(text.contains("2.50\n"), "{text}");
        let md = markdown(&rows, &["natsws".to_owned(), "nats-server".to_owned()]);
        assert!(md.starts_with(
            "| scenario | figure | natsws | spread | nats-server | spread | natsws / nats-server |\n| --- | --- | --- | --- | --- | --- | --- |\n"
        ), "{md}");
        assert!(
            md.contains("| 2.500M | ±20% | 1.000M | ±0% | 2.50 |"),
            "{md}"
        );
    }

    #[test]
    fn one_round_shows_no_spread() {
        let result = ScenarioRuns {
            scenario: &ALL[0],
            runs: vec![vec![measured_run(2.0e6, 300.0)]],
        };
        let rows = rows(&result);
        assert_eq!(rows[0].cells, [("2.000M".to_owned(), String::new())]);
        assert_eq!(rows[0].ratio, "");
    }

    #[test]
    fn skipped_and_failed_scenarios_say_why() {
        let skipped = ScenarioRuns {
            scenario: &ALL[0],
            runs: vec![vec![Ok(Outcome::Skipped("no room".to_owned()))]],
        };
        assert_eq!(rows(&skipped)[0].figure, "skipped: no room");
        let failed = ScenarioRuns {
            scenario: &ALL[0],
            runs: vec![
                vec![Err("boom".to_owned())],
                vec![Ok(Outcome::Skipped("x".to_owned()))],
            ],
        };
        assert_eq!(rows(&failed)[0].figure, "FAILED: boom");
    }
}
