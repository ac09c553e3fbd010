"""MPI plumbing: the communicator layout, work distribution, aborts. Physics lives elsewhere."""
