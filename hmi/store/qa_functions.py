"""The functions a QA query may call: operators and plain scalar, aggregate and window functions.

Kept apart from the guard so the list can be reviewed (and extended when QA
needs a harmless function) without reading the parse-tree walk. Anything
not listed is refused: table functions, file and catalogue access, settings,
and functions that name other functions by string.
"""

from __future__ import annotations


def words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_OPERATORS = words(
    "+ - * / // % ** ^ || & | << >> ~ ~~ !~~ ~~* !~~* ~~~ ^@ @> <@ && ->> "
    "like_escape not_like_escape ilike_escape not_ilike_escape"
)
_SCALARS = words(
    """
    abs ceil ceiling floor round round_even trunc sign sqrt cbrt pow power exp ln log log2
    log10 mod fmod greatest least isnan isinf isfinite pi degrees radians sin cos tan asin
    acos atan atan2 add subtract multiply divide
    lower upper lcase ucase length len strlen char_length character_length octet_length
    substr substring left right trim ltrim rtrim replace translate concat concat_ws
    contains starts_with ends_with prefix suffix position strpos instr split_part
    string_split str_split string_to_array regexp_matches regexp_replace regexp_extract
    regexp_extract_all regexp_full_match regexp_split_to_array lpad rpad reverse format
    printf md5 sha1 sha256 ascii chr unicode strip_accents levenshtein hex
    nullif if
    now today current_date get_current_timestamp get_current_time current_localtimestamp
    current_localtime transaction_timestamp date_trunc datetrunc date_part datepart
    date_diff datediff date_sub datesub date_add strftime strptime try_strptime epoch
    epoch_ms epoch_us epoch_ns to_timestamp make_date make_time make_timestamp
    make_timestamptz year month day dayofmonth hour minute second millisecond microsecond
    dayofweek dayofyear isodow isoyear week weekofyear weekday quarter yearweek last_day
    monthname dayname age time_bucket timezone to_years to_months to_weeks to_days
    to_hours to_minutes to_seconds to_milliseconds to_microseconds
    json_extract json_extract_string json_extract_path json_extract_path_text json_value
    json_exists json_array_length json_keys json_type json_valid json_contains to_json
    list_value list_extract list_element array_extract array_slice list_slice
    list_contains list_has array_contains array_has list_position list_indexof
    array_length list_sort array_sort list_reverse_sort list_distinct array_distinct
    list_unique list_concat list_cat array_concat array_cat list_transform
    array_transform list_apply array_apply list_filter array_filter list_reduce
    array_to_string flatten unnest list_sum list_min list_max list_avg list_count
    struct_extract struct_pack row
    """
)
_AGGREGATES = words(
    """
    count count_star sum avg mean min max string_agg group_concat listagg list array_agg
    first last any_value arbitrary arg_min arg_max argmin argmax min_by max_by median mode
    quantile quantile_cont quantile_disc approx_count_distinct approx_quantile stddev
    stddev_samp stddev_pop variance var_samp var_pop bool_and bool_or count_if countif
    product histogram corr covar_pop covar_samp fsum favg kahan_sum sumkahan regr_slope
    regr_intercept regr_r2 regr_count mad skewness kurtosis entropy json_group_array
    json_group_object
    """
)
_WINDOWS = words(
    "row_number rank dense_rank rank_dense percent_rank cume_dist ntile lag lead "
    "first_value last_value nth_value"
)
ALLOWED_FUNCTIONS: frozenset[str] = _OPERATORS | _SCALARS | _AGGREGATES | _WINDOWS
"""Function names (lower case) a QA query may call.

Only functions that compute on their arguments: no file, setting, catalogue,
sequence or variable access, and nothing that takes another function's name as
a string (``list_aggregate``), so the allow-list cannot be side-stepped.
"""

WINDOW_FUNCTIONS: frozenset[str] = _AGGREGATES | _WINDOWS
"""What may stand in an OVER (...) clause: aggregates and window functions only."""
