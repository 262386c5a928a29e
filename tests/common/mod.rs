pub mod pipeline_run;
pub mod reshape;
