pub mod memnet;
