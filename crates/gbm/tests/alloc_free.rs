//! Single-row prediction must not allocate.

use gbm::{Column, Dataset, ForestParams, ForestTask, GbmParams, Objective, train, train_forest};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;
static ALLOCS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::SeqCst);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn predict_row_does_not_allocate() {
    let n = 2000;
    let x: Vec<f64> = (0..n).map(|i| ((i * 37) % 101) as f64).collect();
    let c: Vec<u32> = (0..n).map(|i| (i % 7) as u32).collect();
    let y: Vec<f64> = (0..n).map(|i| ((i % 7) % 3) as f64).collect();
    let data = Dataset::new(vec![
        Column::Numeric(x),
        Column::Categorical {
            codes: c,
            missing: u32::MAX,
        },
    ])
    .unwrap();
    let params = GbmParams {
        objective: Objective::Multiclass { num_class: 3 },
        n_estimators: 20,
        num_threads: 1,
        ..Default::default()
    };
    let model = train(&params, &data, &y, None, None).unwrap();
    let mut out = [0.0; 3];
    let rows = [[5.0, 3.0], [f64::NAN, 1.0], [50.0, f64::NAN], [7.0, 1e9]];
    // the first prediction packs the trees for prediction, once
    model.predict_row(&rows[0], &mut out).unwrap();
    let before = ALLOCS.load(Ordering::SeqCst);
    for _ in 0..100 {
        for r in &rows {
            model.predict_row(r, &mut out).unwrap();
            model.predict_raw_row(r, &mut out).unwrap();
        }
    }
    let after = ALLOCS.load(Ordering::SeqCst);
    assert_eq!(after, before, "predict_row allocated");

    for extra in [false, true] {
        let p = ForestParams {
            n_estimators: 10,
            num_threads: 1,
            ..if extra {
                ForestParams::extra_trees(ForestTask::Multiclass { num_class: 3 })
            } else {
                ForestParams::random_forest(ForestTask::Multiclass { num_class: 3 })
            }
        };
        let forest = train_forest(&p, &data, &y, None).unwrap();
        forest.predict_row(&rows[0], &mut out).unwrap();
        let before = ALLOCS.load(Ordering::SeqCst);
        for _ in 0..100 {
            for r in &rows {
                forest.predict_row(r, &mut out).unwrap();
            }
        }
        let after = ALLOCS.load(Ordering::SeqCst);
        assert_eq!(after, before, "ForestModel::predict_row allocated");
    }
}
