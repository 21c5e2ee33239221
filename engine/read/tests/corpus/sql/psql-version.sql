SELECT version(), current_database(), current_schema(), current_setting('server_version_num')
