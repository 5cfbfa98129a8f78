"""Tests of the local Hostaway API stand-in, over real sockets."""
