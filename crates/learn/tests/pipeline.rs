use learn::{Cell, Pipeline, ProblemType, TrainOptions, train};

fn table(csv: &str) -> tabular::Table {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("t.csv");
    std::fs::write(&p, csv).unwrap();
    tabular::read_path(&p).unwrap()
}

fn data(n: usize) -> String {
    let mut s = String::from("num,color,when,flag,label\n");
    for i in 0..n {
        let color = ["red", "green", "blue"][i % 3];
        let label = if (i % 3 == 0) ^ (i % 10 == 0) {
            "yes"
        } else {
            "no"
        };
        let num = if i % 17 == 0 {
            String::new()
        } else {
            format!("{}", (i * 37 % 101) as f64 / 10.0)
        };
        s.push_str(&format!(
            "{num},{color},2024-01-{:02},{},{label}\n",
            1 + i % 28,
            i % 2 == 0
        ));
    }
    s
}

#[test]
fn save_load_round_trip_and_row_equals_batch() {
    let t = table(&data(300));
    let p = train(&t, "label", &TrainOptions::default(), &mut |_| {}).unwrap();
    assert_eq!(p.problem, ProblemType::Binary);
    assert_eq!(p.labels, vec!["no", "yes"]);
    assert_eq!(
        p.preprocessor.n_features(),
        1 + 1 + 6 + 1,
        "num, color, six datetime parts, flag"
    );
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("m.model");
    p.save(&f).unwrap();
    let q = Pipeline::load(&f).unwrap();
    assert_eq!(p, q);
    let batch = q.predict(&t).unwrap();
    let mut scratch = q.scratch();
    for i in [0usize, 1, 17, 150, 299] {
        let cells: Vec<String> = t
            .columns
            .iter()
            .map(|c| c.str_at(i).unwrap_or_default())
            .collect();
        let row: Vec<Cell> = q
            .preprocessor
            .columns
            .iter()
            .map(|c| {
                let j = t.column_index(&c.name).unwrap();
                if cells[j].is_empty() {
                    Cell::Missing
                } else {
                    Cell::Text(&cells[j])
                }
            })
            .collect();
        q.predict_row(&row, &mut scratch).unwrap();
        assert!(
            (scratch.out[0] - batch.probabilities[2 * i + 1]).abs() < 1e-12,
            "row {i}"
        );
    }
    // an unseen category and missing values predict like missing in training
    let odd = table("num,color,when,flag\n,purple,,\n");
    let pr = q.predict(&odd).unwrap();
    let missing = table("num,color,when,flag\n,,,\n");
    assert_eq!(pr.probabilities, q.predict(&missing).unwrap().probabilities);
    // a column the model needs is named when absent
    let e = q
        .predict(&table("num,when,flag\n1,2024-01-01,true\n"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("'color'"), "{e}");
}

#[test]
fn problem_types_are_inferred_and_can_be_forced() {
    let mut s = String::from("x,stars,price\n");
    for i in 0..100 {
        s.push_str(&format!("{i},{},{}\n", 1 + i % 5, 10.5 + i as f64 * 1.25));
    }
    let t = table(&s);
    let p = train(&t, "stars", &TrainOptions::default(), &mut |_| {}).unwrap();
    assert_eq!((p.problem, p.labels.len()), (ProblemType::Multiclass, 5));
    let forced = TrainOptions {
        problem: Some(ProblemType::Regression),
        ..Default::default()
    };
    assert_eq!(
        train(&t, "stars", &forced, &mut |_| {}).unwrap().problem,
        ProblemType::Regression
    );
    assert_eq!(
        train(&t, "price", &TrainOptions::default(), &mut |_| {})
            .unwrap()
            .problem,
        ProblemType::Regression
    );
    let e = train(
        &t,
        "price",
        &TrainOptions {
            problem: Some(ProblemType::Binary),
            ..Default::default()
        },
        &mut |_| {},
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("not 2"), "{e}");
}

#[test]
fn explanations_add_up_and_rank_the_signal_first() {
    let t = table(&data(300));
    let p = train(&t, "label", &TrainOptions::default(), &mut |_| {}).unwrap();
    let imp = p.importance();
    assert_eq!(imp.len(), 4, "num, color, when, flag: {imp:?}");
    assert!((imp.iter().map(|x| x.1).sum::<f64>() - 1.0).abs() < 1e-9);
    assert_eq!(imp[0].0, "color", "the label depends on color: {imp:?}");
    let c = p.contributions(&t).unwrap();
    assert_eq!(c.columns.len(), 4);
    let pred = p.predict(&t).unwrap();
    for i in [0usize, 7, 123] {
        let raw: f64 = c.row(i, 0).iter().sum();
        let prob = 1.0 / (1.0 + (-raw).exp());
        assert!(
            (prob - pred.probabilities[2 * i + 1]).abs() < 1e-9,
            "row {i}: contributions sum to the score"
        );
    }
}

/// Names whose title decides the label, as in the titanic data: only the
/// words in the text carry the signal.
fn titled(n: usize) -> String {
    let mut s = String::from("x,name,note,label\n");
    for i in 0..n {
        let (title, label) = match i % 4 {
            0 => ("Mr.", "no"),
            1 => ("Mrs.", "yes"),
            2 => ("Miss.", "yes"),
            _ => ("Master.", "no"),
        };
        // a rare word (under 1 % of rows); a categorical note, missing now and then
        let rare = if i == 7 { " Zebedee" } else { "" };
        let note = if i % 5 == 0 { "" } else { "seen on deck" };
        s.push_str(&format!(
            "{},\"Surname{i}, {title} Given{i}{rare}\",{note},{label}\n",
            i % 7
        ));
    }
    s
}

#[test]
fn free_text_becomes_word_features_that_carry_its_signal() {
    let t = table(&titled(400));
    assert_eq!(t.column("name").unwrap().kind, tabular::Kind::Text);
    let p = train(&t, "label", &TrainOptions::default(), &mut |_| {}).unwrap();
    let name = p
        .preprocessor
        .columns
        .iter()
        .find(|c| c.name == "name")
        .unwrap();
    let learn::preprocess::Encoding::Text { words } = &name.encoding else {
        panic!("{:?}", name.encoding)
    };
    // each title is in a quarter of the rows; surnames, given names and the rare word are not kept
    let mut sorted = words.clone();
    sorted.sort();
    assert_eq!(sorted, ["master", "miss", "mr", "mrs"]);
    assert!(
        p.preprocessor
            .features
            .contains(&"name__has_mrs".to_string())
    );
    assert!(
        p.preprocessor
            .features
            .contains(&"name__missing".to_string())
    );
    // the title alone separates the classes
    let pr = p.predict(&t).unwrap();
    let right = (0..t.rows())
        .filter(|&i| {
            let yes = pr.probabilities[2 * i + 1] > 0.5;
            yes == matches!(i % 4, 1 | 2)
        })
        .count();
    assert_eq!(right, t.rows());
    // one row at a time agrees with the batch, upper case and a number included
    let mut scratch = p.scratch();
    let mut row = |name: Cell, note: Cell| {
        let cells: Vec<Cell> = p
            .preprocessor
            .columns
            .iter()
            .map(|c| match c.name.as_str() {
                "x" => Cell::Number(1.0),
                "name" => name,
                _ => note,
            })
            .collect();
        p.predict_row(&cells, &mut scratch).unwrap();
        scratch.out[0]
    };
    assert!(row(Cell::Text("DOE, MRS. JANE"), Cell::Missing) > 0.5);
    assert!(row(Cell::Text("Doe, Mr. John"), Cell::Text("seen on deck")) < 0.5);
    let numeric = row(Cell::Number(42.0), Cell::Missing);
    let batch = p
        .predict(&table("x,name,note\n1,42,\n"))
        .unwrap()
        .probabilities[1];
    assert!((numeric - batch).abs() < 1e-12, "{numeric} {batch}");
    // a text column left out is read as missing, not refused
    let without = p.predict(&table("x,note\n1,seen on deck\n")).unwrap();
    let missing = p.predict(&table("x,name,note\n1,,seen on deck\n")).unwrap();
    assert_eq!(without.probabilities, missing.probabilities);
}
