//! Typed errors for everything that depends on user-supplied data or parameters.

/// Errors returned by training and prediction.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GbmError {
    /// The training data has no rows.
    #[error("the training data has no rows")]
    EmptyData,
    /// The dataset has no feature columns.
    #[error("the dataset has no feature columns")]
    NoFeatures,
    /// Columns of a dataset have different lengths.
    #[error("column {column} has {got} rows but column 0 has {expected}")]
    ColumnLength {
        column: usize,
        expected: usize,
        got: usize,
    },
    /// The target has a different length than the data.
    #[error("the target has {got} values but the data has {expected} rows")]
    TargetLength { expected: usize, got: usize },
    /// The weights have a different length than the data.
    #[error("the weights have {got} values but the data has {expected} rows")]
    WeightLength { expected: usize, got: usize },
    /// A target value is NaN or infinite.
    #[error("the target value at row {row} is missing or not finite")]
    NonFiniteTarget { row: usize },
    /// A weight is negative, NaN or infinite.
    #[error("the weight at row {row} is negative or not finite")]
    InvalidWeight { row: usize },
    /// All weights are zero.
    #[error("the sample weights sum to zero")]
    ZeroWeight,
    /// A binary target is not 0 or 1.
    #[error("binary targets must be 0 or 1; row {row} has {value}")]
    InvalidBinaryLabel { row: usize, value: f64 },
    /// A multiclass target is not an integer class index below `num_class`.
    #[error("multiclass targets must be class indices 0..{num_class}; row {row} has {value}")]
    InvalidClassLabel {
        row: usize,
        value: f64,
        num_class: usize,
    },
    /// Classification with only one class present in the training target.
    #[error("the classification target has a single class ({class}); at least two are needed")]
    SingleClass { class: f64 },
    /// A categorical code is too large (codes must be dense small integers).
    #[error("column {column} has categorical code {code}; codes must be below {max}")]
    CategoryCodeTooLarge { column: usize, code: u32, max: u32 },
    /// A hyper-parameter is out of range.
    #[error("invalid parameter `{name}`: {reason}")]
    InvalidParam { name: &'static str, reason: String },
    /// The data to predict on (or validate with) has a different number of features.
    #[error("the model has {expected} features but the input has {got}")]
    FeatureCountMismatch { expected: usize, got: usize },
    /// A column's kind (numeric/categorical) differs from the training data.
    #[error("feature {feature} is {expected:?} in the model but {got:?} in the input")]
    FeatureKindMismatch {
        feature: usize,
        expected: crate::FeatureKind,
        got: crate::FeatureKind,
    },
    /// An output buffer has the wrong length.
    #[error("the output buffer has length {got}, expected {expected}")]
    OutputLength { expected: usize, got: usize },
    /// A row index is out of range.
    #[error("row {row} is out of range for {n_rows} rows")]
    RowOutOfRange { row: usize, n_rows: usize },
    /// The rayon thread pool could not be created.
    #[error("could not create the thread pool: {0}")]
    ThreadPool(String),
}
