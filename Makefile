# Two entry points of the README quick start, plus a few conveniences.
#   make quickstart   install everything, then run inputs/quickstart.yaml on 2 MPI ranks
#   make test         install everything, then run the whole CI test suite
NP ?= 2
CONFIG ?= inputs/quickstart.yaml
PY := .venv/bin/python
# OpenMPI as root on a workstation/container, oversubscribing small machines, local traffic only
MPIENV := OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 \
          OMPI_MCA_rmaps_base_oversubscribe=1 OMP_NUM_THREADS=1 PYTHONUNBUFFERED=1 \
          OMPI_MCA_btl=self,vader OMPI_MCA_oob_tcp_if_include=lo GLOO_SOCKET_IFNAME=lo \
          DS_ACCELERATOR=cpu

.PHONY: install quickstart run test test-slow bench clean
install:
	bash dev/install.sh

quickstart: install
	$(MPIENV) mpirun -n $(NP) $(PY) -m hpc_rg $(CONFIG) --set run.output=runs/quickstart-$$(date +%Y%m%d-%H%M%S)

run:
	$(MPIENV) mpirun -n $(NP) $(PY) -m hpc_rg $(CONFIG) $(ARGS)

test: install
	bash dev/run_tests.sh

test-slow: install
	bash dev/run_tests.sh --slow

clean:
	rm -rf runs .pytest_cache
