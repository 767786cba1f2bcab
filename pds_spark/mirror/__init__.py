"""Function 1 and the tender's option: the warehouse mirrored into a relational schema."""
