-- Raw tables of the provincial sources S2-S4 (dossiers, feedback, centres). Owned by the loader.
set role chiso_loader;

reset role;
