"""One module per API area; each holds a blocking class and its async twin side by side."""
