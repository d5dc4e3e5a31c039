// The seed benchmark's service (shared/seed/README.md): md5 of a 400,000-character string.
service HashService {
    string md_five(1: string input_str),
}
