use thiserror::Error;

/// Everything that can go wrong when fitting or applying a linear model.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum LinearError {
    /// The training data has no rows.
    #[error("the training data has no rows")]
    EmptyData,
    /// The matrix has no feature columns.
    #[error("the data has no feature columns (d = 0)")]
    NoFeatures,
    /// `x.len()` is not `n × d`.
    #[error("the feature matrix has {got} values but n × d = {expected}")]
    DataLength { expected: usize, got: usize },
    /// The target vector does not have one value per row.
    #[error("the target has {got} values but there are {expected} rows")]
    TargetLength { expected: usize, got: usize },
    /// A feature value is NaN or infinite.
    #[error("feature value at row {row}, column {column} is not finite ({value})")]
    NonFinite {
        row: usize,
        column: usize,
        value: f64,
    },
    /// A target value is NaN or infinite.
    #[error("target value at row {row} is not finite ({value})")]
    NonFiniteTarget { row: usize, value: f64 },
    /// A classification target is not an integer class index in `0..num_class`.
    #[error("target value {value} at row {row} is not a class index in 0..{num_class}")]
    InvalidClass {
        row: usize,
        value: f64,
        num_class: usize,
    },
    /// Every training row has the same class.
    #[error("all training rows have class {class}; classification needs at least two classes")]
    SingleClass { class: usize },
    /// A hyper-parameter is out of range.
    #[error("invalid parameter `{name}` = {value}: {expected}")]
    InvalidParam {
        name: &'static str,
        value: String,
        expected: &'static str,
    },
    /// A row passed to the model has the wrong number of features.
    #[error("the row has {got} features but the model expects {expected}")]
    RowLength { expected: usize, got: usize },
    /// The output buffer has the wrong length.
    #[error("the output buffer has length {got} but the model has {expected} outputs")]
    OutputLength { expected: usize, got: usize },
}
