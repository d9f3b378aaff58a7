//! Typed, validated server options built from the value tree.
