//! Tests of the authentication decisions and permissions.
