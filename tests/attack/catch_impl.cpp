// The Catch2 implementation the integration harness links against, without
// Catch2's main: troupe-attack is a program of its own and never runs a
// Catch2 session, so it calls no harness function that asserts (load, spawn,
// ask, kill_process); it checks every result itself.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>
