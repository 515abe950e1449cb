"""The keepalived.conf language: lexer, schema, model, builder, validator, renderer, diff."""
