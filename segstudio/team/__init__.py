"""Team projects: the `Project` API on a PostgreSQL server, for several annotators and reviewers.

No Qt here, and nothing imports psycopg until a team project is opened (`connection.require_driver`),
so a single user with a local project needs neither the driver nor a server.

    errors      the typed errors a team member can meet (stale save, lease held, no right)
    connection  URL checks, connecting, turning driver errors into one clear paragraph
    schema      the server's SQL: group roles, tables, grants, row-level security, migrations
    project     TeamProject: the Project facade over the server (connection, settings, queries)
    editing     its editing rules: leases, versioned masks, review
    team_data   its shared data: predictions, effort per member, model versions
    removal     a lead removes images from the project and restores them (nothing saved is lost)
    transfer    local project -> server (`team create`) and back (`team pull`)
    work_queue  batches of unpredicted images for ranks on many machines (FOR UPDATE SKIP LOCKED)
    local_server  a throwaway PostgreSQL server in a temp folder (tests, benchmarks, trying it out)
"""
