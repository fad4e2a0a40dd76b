"""The frozen-feature cache: a model cut into a frozen part computed once and a tail that trains."""
